"""ASGI entry point: HTTP through Django (but /livez: ops/health.py); the live-status websocket through portal/routing.py."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

http = get_asgi_application()  # sets Django up before the websocket side imports models

from ops.health import with_livez  # noqa: E402
from portal.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": with_livez(http), "websocket": websocket_application()})
