"""GET / (versions) and GET /healthz (database + channel layer), both without auth."""

import asyncio
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse


def versions(request):
    base = request.build_absolute_uri("/").rstrip("/")
    return JsonResponse(
        {"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"href": f"{base}/v1.0/", "rel": "self"}]}]}
    )


def _check_database():
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()


async def _channel_round_trip():
    """Send to a fresh channel and read it back: proves the layer really works."""
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz"})
    await asyncio.wait_for(layer.receive(channel), timeout=2)


def _check(fn):
    started = time.monotonic()
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - any failure is "down", with its reason
        return {"status": "down", "error": f"{type(err).__name__}: {err}"[:300]}
    return {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 1)}


def healthz(request):
    checks = {
        "database": _check(_check_database),
        "channel_layer": _check(async_to_sync(_channel_round_trip)),
    }
    healthy = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse({"status": "ok" if healthy else "down", "checks": checks}, status=200 if healthy else 503)
