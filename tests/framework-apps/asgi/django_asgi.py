"""A single-file Django project served through django.core.asgi
(get_asgi_application), mounted at /dj. Django's handler does not support
the lifespan protocol, which must not keep it from serving."""

import os

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="asgi-tests-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path, reverse  # noqa: E402


async def item(request, n):
    return JsonResponse(
        {
            "framework": "django",
            "id": n,
            "self": reverse("item", args=[n]),
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "path_info": request.path_info,
        }
    )


urlpatterns = [path("items/<int:n>", item, name="item")]

application = get_asgi_application()
