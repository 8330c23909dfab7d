"""URLs of `policies` (pages and API), included at the site root by tomsite/urls.py."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
