from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class BudgetsConfig(AppConfig):
    # The config of "budgets" in INSTALLED_APPS; the admin's config below is named there
    # explicitly. (AdminConfig is imported as a module attribute so that Django does not
    # count it as a third candidate.)
    default = True
    name = "budgets"
    verbose_name = "Budgets and ledger"

    def ready(self) -> None:
        # Cap changes audited by personas become budget.changed events (budgets/events).
        from budgets.events import hooks
        from budgets.services import pause

        hooks.connect()
        pause.connect()  # budget.paused when a stop switch is turned on


class Hal0AdminConfig(admin_apps.AdminConfig):
    """Django's admin on hal0's site (``budgets.admin.site.Hal0AdminSite``).

    It lives here, not in ``budgets/admin/``: an app config is imported before the models
    are loaded, and importing anything under ``budgets.admin`` runs the package, which
    registers the ledger's ``ModelAdmin``s.
    """

    default = False  # named in INSTALLED_APPS; never the default config of "budgets"
    default_site = "budgets.admin.site.Hal0AdminSite"

    def ready(self) -> None:
        # Import the budgets admin before autodiscovery touches ``admin.site``: the lazy
        # site builds itself by importing ``budgets.admin.site``, which runs the package's
        # registrations, which need the site. Started from here the site is built once
        # (inside those registrations); started by autodiscovery it would be built twice
        # and the first one's registrations lost.
        import budgets.admin  # noqa: F401

        super().ready()
