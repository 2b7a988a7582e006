"""URL map: the JSON API under /api/, the operators' admin under /admin/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("personas.urls")),
]

handler400 = "hal0.errors.handler400"
handler403 = "hal0.errors.handler403"
handler404 = "hal0.errors.handler404"
handler500 = "hal0.errors.handler500"
