"""/healthz?deep=1 and `manage.py healthcheck`: what the OCF level-10 monitors ask.

Details (names, backlog, reasons) need a token; anonymous callers get statuses only.
"""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from state.kinds import beat_heartbeat_name
from state.models import StateUpdate, WorkerHeartbeat

pytestmark = pytest.mark.django_db

DEEP_CHECKS = {"database", "channel_layer", "state_tables", "broker", "workers"}


def heartbeat(name, kind="state", age=0.0):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(name=name, kind=kind, pid=1, started_at=now - timedelta(minutes=5),
                                          beat_at=now - timedelta(seconds=age))


def test_it_reports_the_backlog_and_warns_without_a_live_state_worker(client_as, subcloud_factory):
    subcloud_factory("sc1")
    r = client_as("service").post("/v1.0/state/availability", {"subcloud": "sc1", "availability_status": "online"},
                                  format="json")
    assert r.status_code == 202, r.content
    heartbeat("dcportal-audit@host", kind="audit")  # a live Celery worker is no state worker
    r = client_as("reader").get("/healthz?deep=1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "degraded"
    assert set(body["checks"]) == DEEP_CHECKS
    assert body["checks"]["state_tables"]["status"] == "ok"
    assert body["checks"]["state_tables"]["pending"] == StateUpdate.objects.filter(applied_at__isnull=True).count() == 1
    assert body["checks"]["state_tables"]["oldest_pending_age_seconds"] >= 0
    assert body["checks"]["broker"]["status"] == "ok"
    assert body["checks"]["workers"]["status"] == "warn"
    assert body["checks"]["workers"]["alive"] == ["dcportal-audit@host"]
    # The plain check is unchanged.
    assert set(APIClient().get("/healthz").json()["checks"]) == {"database", "channel_layer"}


def test_it_is_ok_with_a_live_state_worker_and_lists_stale_ones(client_as):
    heartbeat("state-0")
    heartbeat("state-9", age=3600)
    r = client_as("outsider").get("/healthz?deep=1")  # any valid token, whatever its role
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["workers"] == {**body["checks"]["workers"], "status": "ok", "alive": ["state-0"],
                                         "stale": ["state-9"]}
    assert body["checks"]["state_tables"]["pending"] == 0


def test_it_answers_503_naming_the_broker_when_it_is_down(tmp_path, client_as):
    with override_settings(CELERY_BROKER_URL=f"redis+socket://:hunter2@{tmp_path}/nobody.sock"):
        r = client_as("reader").get("/healthz?deep=1")
        anonymous = APIClient().get("/healthz?deep=1")
        plain = APIClient().get("/healthz")
    assert r.status_code == 503, r.content
    body = r.json()
    assert body["status"] == "down"
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["broker"]["error"] == "unreachable"  # a fixed reason: no socket path, no password
    assert str(tmp_path) not in r.content.decode() and "hunter2" not in r.content.decode()
    assert body["checks"]["database"]["status"] == "ok"
    assert anonymous.status_code == 503
    assert anonymous.json()["checks"]["broker"] == {"status": "down"}
    assert plain.status_code == 200  # only the deep check depends on the broker


def test_it_checks_one_workers_own_heartbeat_from_the_command_line(capsys):
    with pytest.raises(CommandError, match="worker"):
        call_command("healthcheck", worker="state-0", max_age=5)
    assert "no heartbeat row for worker 'state-0'" in capsys.readouterr().out
    row = heartbeat("state-0", age=60)
    with pytest.raises(CommandError, match="worker"):
        call_command("healthcheck", worker="state-0", max_age=5)
    assert "last wrote its heartbeat" in capsys.readouterr().out
    row.beat_at = timezone.now()
    row.save()
    call_command("healthcheck", worker="state-0", max_age=5)
    out = capsys.readouterr().out
    assert '"status": "ok"' in out and '"worker": {' in out


def test_it_fails_the_celery_ping_of_a_node_that_does_not_answer(capsys):
    heartbeat("dcportal-audit@nowhere", kind="audit")
    with pytest.raises(CommandError, match="celery_ping"):
        call_command("healthcheck", worker="dcportal-audit@nowhere", max_age=5, celery_ping=True)
    assert "did not answer a ping" in capsys.readouterr().out


def test_it_tells_anonymous_callers_only_the_statuses(client_as):
    heartbeat("state-0")
    heartbeat("secret-host-worker", kind="audit", age=3600)
    r = APIClient().get("/healthz?deep=1", HTTP_X_AUTH_TOKEN="not-a-token")
    assert r.status_code == 200, r.content
    assert r.json() == {"status": "ok", "checks": {name: {"status": "ok"} for name in DEEP_CHECKS}}
    assert b"secret-host-worker" not in r.content and b"pending" not in r.content
    detailed = client_as("reader").get("/healthz?deep=1")
    assert b"secret-host-worker" in detailed.content
    assert detailed.json()["checks"]["state_tables"]["pending"] == 0


def test_it_checks_this_hosts_beat_by_the_name_the_beat_writes(capsys):
    with pytest.raises(CommandError, match="worker"):
        call_command("healthcheck", beat=True, max_age=5)
    assert f"no heartbeat row for worker '{beat_heartbeat_name()}'" in capsys.readouterr().out
    heartbeat(beat_heartbeat_name(), kind="beat")
    call_command("healthcheck", beat=True, max_age=5)
    assert '"worker": {' in capsys.readouterr().out


def test_it_reports_an_unreachable_database_without_its_dsn_or_socket_path(tmp_path):
    """The full report (what a token holder or the OCF monitor sees) with the database on a socket that is not there."""
    socket_dir = tmp_path / "pg-socket-dir"
    env = {**os.environ, "DATABASE_URL": f"postgres://dcp:s3cretpw@/dcportal?host={socket_dir}", "DCPORTAL_DB_POOL_MAX": "0"}
    r = subprocess.run([sys.executable, "manage.py", "healthcheck"], cwd=Path(__file__).resolve().parent.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr  # only a shared dependency is down (and from here)
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["checks"]["database"] == {"status": "down", "error": "unreachable"}
    assert str(socket_dir) not in r.stdout and "s3cretpw" not in r.stdout
    assert str(socket_dir) in r.stderr  # the details are logged on the server side


async def test_it_answers_livez_from_the_event_loop_and_passes_everything_else_to_django():
    """The api agent's depth-0 monitor: no Django, no thread, no database (ops.health.with_livez)."""
    from channels.testing import HttpCommunicator

    from dcportal.asgi import application

    r = await HttpCommunicator(application, "GET", "/livez").get_response()
    assert (r["status"], r["body"]) == (200, b"ok\n")
    assert (b"cache-control", b"no-store") in r["headers"]
    r = await HttpCommunicator(application, "GET", "/livez/more", headers=[(b"host", b"localhost")]).get_response()
    assert r["status"] == 404  # only the exact path; the rest is Django's


def test_it_tells_a_shared_outage_from_a_broken_process_from_the_command_line(tmp_path, capsys):
    """`healthcheck --dependencies --process-report`: exit 3 only when everything the process has down needs a
    shared dependency that is down from here too (what daphne's OCF monitor asks with its /healthz body)."""
    dead_broker = f"redis+socket://{tmp_path}/nobody.sock"

    def verdict(down, **settings):
        report = tmp_path / "report.json"
        report.write_text(json.dumps({"status": "down" if down else "ok",
                                      "checks": {name: {"status": "down"} for name in down} | {"database": {"status": "ok"}}
                                      if down else {"database": {"status": "ok"}}}))
        with override_settings(**settings), pytest.raises(CommandError) as raised:
            call_command("healthcheck", dependencies=True, process_report=str(report))
        capsys.readouterr()
        return raised.value.returncode, str(raised.value)

    # Down for everyone: the broker, and a Celery ping that needs it.
    code, message = verdict(["broker", "celery_ping"], CELERY_BROKER_URL=dead_broker)
    assert code == 3 and "shared dependency down from this host too: broker" in message
    # The broker is up from here: the process is the one that cannot reach it.
    assert verdict(["broker"]) == (1, "unhealthy: broker")
    # Missing state tables while the database answers here; a check no shared dependency explains.
    assert verdict(["state_tables"], CELERY_BROKER_URL=dead_broker)[0] == 1
    assert verdict(["frobnicator", "broker"], CELERY_BROKER_URL=dead_broker)[0] == 1
    assert "reports nothing down" in verdict([])[1]
    # Alone, --dependencies says whether a shared dependency is down here.
    call_command("healthcheck", dependencies=True)
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    with override_settings(CELERY_BROKER_URL=dead_broker), pytest.raises(CommandError) as raised:
        call_command("healthcheck", dependencies=True)
    assert raised.value.returncode == 3
    with pytest.raises(CommandError, match="excludes"):
        call_command("healthcheck", dependencies=True, worker="state-0")


def test_it_reports_a_workers_heartbeat_down_with_the_database_without_asking_it_and_exits_3(tmp_path):
    """The database down from here too: the worker's heartbeat row is down because of it (not tried: each try
    would wait), and the whole is a shared outage (exit 3), which the worker agents' monitors pass."""
    env = {**os.environ, "DATABASE_URL": f"postgres://dcp:pw@/dcportal?host={tmp_path}"}
    r = subprocess.run([sys.executable, "manage.py", "healthcheck", "--worker", "state-0"],
                       cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["checks"]["database"] == {"status": "down", "error": "unreachable"}
    assert report["checks"]["worker"] == {"status": "down", "error": "database down"}
    assert "shared dependency down from this host too: database" in r.stderr
