"""URL map: the JSON API under /api/, the operators' admin under /admin/, a landing page at /."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

# Registers the Bearer scheme (budgets.auth) with the schema generator.
import budgets.openapi  # noqa: F401
from budgets.monitoring import views as monitoring
from hal0.errors import api_not_found
from hal0.views import favicon, home

# The API description is public: it holds no data, and clients need it to get a key.
_public = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    # A landing page that points at the admin and the API description.
    path("", home, name="home"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # Probes for load balancers and orchestrators (docs/alerts.md): no key, no session.
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("api/", include("personas.urls")),
    path("api/", include("budgets.urls")),
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", **_public),
        name="api-docs",
    ),
    # Last: any other /api/ path is a 404 in the error envelope, DEBUG or not.
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]

handler400 = "hal0.errors.handler400"
handler403 = "hal0.errors.handler403"
handler404 = "hal0.errors.handler404"
handler500 = "hal0.errors.handler500"
