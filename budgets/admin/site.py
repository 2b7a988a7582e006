"""The admin site of hal0 spend control: Django's admin plus the operators' Spend page.

Installed through ``budgets.apps.Hal0AdminConfig`` in place of ``django.contrib.admin``,
so ``admin.site`` is this site everywhere and every ``ModelAdmin`` registers on it.
Operator pages are admin views: a staff session is required, API keys do not open them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse


class Hal0AdminSite(admin.AdminSite):
    site_header = "hal0 spend control"
    site_title = "hal0 spend control"
    index_title = "Operators"
    site_url = None  # the service has no public site; hide "View site"
    # The top bar links every operator page; the sidebar would only take the tables' width.
    enable_nav_sidebar = False

    # The index names tables the way the top bar does.
    INDEX_NAMES = {
        ("personas", "BudgetChange"): "Cap changes (audit)",
        ("budgets", "Charge"): "Ledger (charges)",
    }

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> Any:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            for model in app["models"]:
                name = self.INDEX_NAMES.get((app["app_label"], model["object_name"]))
                if name:
                    model["name"] = name
        return apps

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Operators land on the Spend page; every table is one click away (the top bar's
        # "All tables", the stock index at tables/).
        return HttpResponseRedirect(reverse("admin:spend", current_app=self.name))

    def tables_view(self, request: HttpRequest, **kwargs: Any) -> Any:
        """The stock index: every table of the admin, with endpoints that keep failing."""
        from django.conf import settings

        from budgets.events.endpoints import failing_endpoints

        failing = failing_endpoints(settings.HAL0_WEBHOOK_FAILING_AFTER)
        context = {"failing_webhooks": failing, "title": "All tables"}
        return super().index(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        extra = [
            path("spend/", self.admin_view(self.spend_view), name="spend"),
            path("spend/csv/", self.admin_view(self.spend_csv_view), name="spend-csv"),
            path("prices/", self.admin_view(self.prices_view), name="prices"),
            path("tables/", self.admin_view(self.tables_view), name="tables"),
        ]
        return extra + super().get_urls()

    def spend_view(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        from budgets.admin.views import spend_overview

        return spend_overview(request, site=self)

    def spend_csv_view(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        from budgets.admin.views import breakdown_csv

        return breakdown_csv(request)

    def prices_view(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        from budgets.admin.prices import prices_page

        return prices_page(request, site=self)
