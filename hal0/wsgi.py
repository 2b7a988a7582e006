"""WSGI entry point, for gunicorn: ``gunicorn hal0.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")

application = get_wsgi_application()
