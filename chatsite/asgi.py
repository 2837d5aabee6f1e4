import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from chatsite import startup  # noqa: E402 - after Django is set up
from chatsite.lib.body_limits import BodyLimitMiddleware  # noqa: E402
from chatsite.lib.memory import start_trimming  # noqa: E402

application = BodyLimitMiddleware(django_application)
startup.report("web", background=True)
start_trimming(settings.MALLOC_TRIM_SECONDS)
