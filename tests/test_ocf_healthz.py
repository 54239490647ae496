"""/healthz?deep=1 and `manage.py healthcheck`: what the OCF level-10 monitors ask."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

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
    r = APIClient().get("/healthz?deep=1")
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


def test_it_is_ok_with_a_live_state_worker_and_lists_stale_ones():
    heartbeat("state-0")
    heartbeat("state-9", age=3600)
    r = APIClient().get("/healthz?deep=1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["workers"] == {**body["checks"]["workers"], "status": "ok", "alive": ["state-0"],
                                         "stale": ["state-9"]}
    assert body["checks"]["state_tables"]["pending"] == 0


def test_it_answers_503_naming_the_broker_when_it_is_down(tmp_path):
    with override_settings(CELERY_BROKER_URL=f"redis+socket://{tmp_path}/nobody.sock"):
        r = APIClient().get("/healthz?deep=1")
        plain = APIClient().get("/healthz")
    assert r.status_code == 503, r.content
    body = r.json()
    assert body["status"] == "down"
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["status"] == "ok"
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
