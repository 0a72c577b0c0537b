"""Entry point of the Django test project (see ../README.md), as the
wsgi.py that `django-admin startproject` writes."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djangoapp')

# Django sets its URL prefix from SCRIPT_NAME on each request; reverse()
# then includes the mount point.
application = get_wsgi_application()
