"""GET / (versions) and GET /healthz, both without auth.

/healthz: 200 when the database and the channel layer answer, 503 otherwise, with a
status per dependency. /healthz?deep=1 (the OCF level-10 monitor) also reads the
state tables and pings the Celery broker, which a restart of this process could fix
or that make it useless, so they count; the state workers' heartbeats and the
backlog of pending updates are only reported ("warn"): they have their own
resources and monitors, and restarting the API would not bring them back.
`manage.py healthcheck` runs the same checks from the command line. The database, the
channel layer and the broker are shared by every process (DEPENDENCY_CHECKS); a check that
needs one that is already down is reported down without trying (NEEDS), and
shared_outage() tells the OCF monitors when all that a process has down is shared and
down from the agent too: no restart can fix that (docs/ha.md).

GET /livez (the OCF api agent's depth-0 monitor) is answered by daphne's event loop
itself, before Django: no thread, no database, no Redis. It proves the process
serves, which is all a restart can fix, and it stays fast on a busy machine, so the
monitor can run often with a short timeout (docs/ha.md).

Anonymous callers (load balancers, the OCF api monitor, which reads only the HTTP
code) get the overall status and one status per check, nothing else: host and
worker names, backlog, timings and failure reasons need any valid API token
(X-Auth-Token / Authorization: Token) or a logged-in session. A failure reason is
a fixed word chosen by the exception's class ("timeout", "refused", "unreachable"...)
or a message of ours (CheckFailed): never the exception's text, which can carry a
DSN, a socket path or a password; that goes to the server log.
"""

import asyncio
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, ProgrammingError, connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils import timezone

from accounts.authentication import token_from_headers, user_for_token
from accounts.keystone import KeystoneUnavailable
from state.kinds import WorkerKind
from state.models import StateUpdate, WorkerHeartbeat
from state.stats import alive_since

log = logging.getLogger(__name__)

DEEP_VALUES = {"1", "true", "yes"}


class CheckFailed(Exception):
    """A failure whose message we wrote (no configuration in it): shown as is to token holders."""


# Most specific first; the first class found along the exception's cause chain names the reason.
REASONS = [
    (TimeoutError, "timeout"),  # also asyncio's and socket's
    (ConnectionRefusedError, "refused"),
    (ProgrammingError, "schema missing or query refused"),
    (OperationalError, "unreachable"),
    (InterfaceError, "unreachable"),
    (DatabaseError, "database error"),
    (ConnectionError, "unreachable"),
    (OSError, "unreachable"),
]


def _redis_reasons():
    try:
        import redis.exceptions as r
    except ImportError:  # pragma: no cover - redis is a dependency
        return []
    return [(r.TimeoutError, "timeout"), (r.AuthenticationError, "refused"), (r.ConnectionError, "unreachable")]


def _kombu_reasons():
    from kombu.exceptions import OperationalError as KombuOperationalError

    return [(KombuOperationalError, "unreachable")]


def failure_reason(err):
    """A fixed word for err, from its class or that of an exception in its cause chain."""
    table = _redis_reasons() + REASONS + _kombu_reasons()
    seen = set()
    chain = []
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    for e in chain:
        if isinstance(e, CheckFailed):
            return str(e)
    for cls, reason in table:
        if any(isinstance(e, cls) for e in chain):
            return reason
    return "failed"


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


def _check_state_tables():
    """The pending backlog; fails when the schema is missing (an unmigrated database)."""
    pending = StateUpdate.objects.filter(applied_at__isnull=True)
    oldest = pending.order_by("id").values_list("accepted_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else None
    return {"pending": pending.count(), "oldest_pending_age_seconds": round(age, 3) if age is not None else None}


def _check_workers():
    """Processes with a recent heartbeat (state.stats.alive_since); no live state worker is a warning, not a failure."""
    fresh_after = alive_since()
    alive, stale, state_alive = [], [], 0
    for name, kind, beat_at in WorkerHeartbeat.objects.order_by("name").values_list("name", "kind", "beat_at"):
        (alive if beat_at >= fresh_after else stale).append(name)
        state_alive += kind == WorkerKind.STATE and beat_at >= fresh_after
    return {"alive": alive, "stale": stale, "warn": None if state_alive else "no live state worker"}


def _check_broker():
    """Connect to the Celery broker and ping it (kombu's redis channel pings on creation)."""
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url:
        return {"skipped": "CELERY_BROKER_URL is not set"}
    from kombu import Connection

    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "socket_timeout": 2, "socket_connect_timeout": 2}
    with Connection(url, connect_timeout=2, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        _ = conn.default_channel
    return None


def _check_worker(name, max_age):
    """One worker's own database heartbeat is fresh: proves its main loop reaches the database."""
    beat_at = WorkerHeartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()
    if beat_at is None:
        raise CheckFailed(f"no heartbeat row for worker {name!r}")
    age = (timezone.now() - beat_at).total_seconds()
    if age > max_age:
        raise CheckFailed(f"worker {name!r} last wrote its heartbeat {age:.1f}s ago (max {max_age}s)")
    return {"heartbeat_age_seconds": round(age, 3)}


def _check_celery_ping(node):
    """A broker round trip to one Celery worker's main loop (`celery inspect ping`).

    A client configured from the same CELERY_* settings as the project's app (dcportal/celery.py),
    which this process does not load: the ping needs only the broker and its key prefix."""
    from celery import Celery

    app = Celery("dcportal-health", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    replies = app.control.ping(destination=[node], timeout=3)
    if not any(node in reply for reply in replies):
        raise CheckFailed(f"celery node {node!r} did not answer a ping through the broker")


def _check(name, fn, checks=None):
    """One check's result; down at once, without trying, when the dependency it needs is down in `checks` (each
    try would wait for the same timeout: the database pool's is 10 s)."""
    needed = NEEDS.get(name)
    if checks and needed != name and checks.get(needed, {}).get("status") == "down":
        return {"status": "down", "error": f"{needed} down"}
    started = time.monotonic()
    try:
        details = fn()
    except Exception as err:  # noqa: BLE001 - any failure is "down", with a fixed reason; the details go to the log
        log.warning("health check %s failed: %s: %s", name, type(err).__name__, err)
        return {"status": "down", "error": failure_reason(err)}
    result = {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 1)}
    result.update(details or {})
    if result.get("warn"):
        result["status"] = "warn"
    result.pop("warn", None)
    return result


# What every dcportal process shares: down for one process is down for all, and no restart brings it back.
DEPENDENCY_CHECKS = {
    "database": _check_database,
    "channel_layer": async_to_sync(_channel_round_trip),
    "broker": _check_broker,
}
# Each check of a report -> the shared dependency it cannot pass without.
NEEDS = {"database": "database", "channel_layer": "channel_layer", "broker": "broker",
         "state_tables": "database", "workers": "database", "worker": "database", "celery_ping": "broker"}


def run_dependency_checks():
    """Only the shared dependencies, as this process sees them (`manage.py healthcheck --dependencies`)."""
    checks = {name: _check(name, fn) for name, fn in DEPENDENCY_CHECKS.items()}
    return {"status": "down" if any(c["status"] == "down" for c in checks.values()) else "ok", "checks": checks}


def shared_outage(failed, checks):
    """The shared dependencies, down here too, that explain every check named in `failed`, or None.

    `failed` are the checks some process reported down; `checks` are this process's own results, to which
    the dependency checks it lacks are added. None when one of `failed` is not a dependency's (the
    process is broken in its own way) or its dependency is up from here (then the process is the one that
    cannot reach it). The OCF monitors pass on a shared outage: a restart cannot fix it (docs/ha.md)."""
    needed = {NEEDS.get(name) for name in failed}
    if not needed or None in needed:
        return None
    for name in sorted(needed - checks.keys()):
        checks[name] = _check(name, DEPENDENCY_CHECKS[name])
    return sorted(needed) if all(checks[name]["status"] == "down" for name in needed) else None


def run_checks(deep=False, worker=None, worker_max_age=None, celery_ping=False):
    """The health report; status "down" if any check is down, "degraded" if one only warns."""
    checks = {
        name: _check(name, DEPENDENCY_CHECKS[name]) for name in ("database", "channel_layer")
    }
    if deep:
        checks["state_tables"] = _check("state_tables", _check_state_tables, checks)
        checks["broker"] = _check("broker", DEPENDENCY_CHECKS["broker"])
        checks["workers"] = _check("workers", _check_workers, checks)
    if worker:
        checks["worker"] = _check("worker", lambda: _check_worker(worker, worker_max_age), checks)
        if celery_ping:  # the broker first: without it the ping cannot pass, and trying takes seconds
            if "broker" not in checks:
                checks["broker"] = _check("broker", DEPENDENCY_CHECKS["broker"])
            checks["celery_ping"] = _check("celery_ping", lambda: _check_celery_ping(worker), checks)
    statuses = {c["status"] for c in checks.values()}
    status = "down" if "down" in statuses else "degraded" if "warn" in statuses else "ok"
    return {"status": status, "checks": checks}


def may_see_details(request):
    """Any valid API token, or a logged-in session (the pages' users)."""
    try:
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            return True
        token = token_from_headers(request.headers)
        return token is not None and user_for_token(token) is not None
    except (DatabaseError, KeystoneUnavailable):  # what is down cannot recognise anybody, so no details
        return False


def redacted(report):
    """What anyone may know: up or not, per dependency."""
    return {"status": report["status"], "checks": {name: {"status": c["status"]} for name, c in report["checks"].items()}}


def healthz(request):
    report = run_checks(deep=request.GET.get("deep", "").lower() in DEEP_VALUES)
    body = report if may_see_details(request) else redacted(report)
    return JsonResponse(body, status=503 if report["status"] == "down" else 200)


def root(request):
    """GET /: the versions document (api.md); a browser asking for HTML is sent to the pages instead."""
    if "text/html" in request.headers.get("Accept", ""):
        return redirect("portal:overview")
    return versions(request)


LIVEZ_PATH = "/livez"


async def _livez(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b"ok\n"})


def with_livez(app):
    """app, except GET /livez, which the event loop answers at once (see the module docstring)."""

    async def router(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == LIVEZ_PATH:
            return await _livez(scope, receive, send)
        return await app(scope, receive, send)

    return router
