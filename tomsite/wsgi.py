"""WSGI entry point (gunicorn tomsite.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
application = get_wsgi_application()
