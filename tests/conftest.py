"""Fixtures: personas with tokens, factories, draining, real worker processes.

Everything runs on the real PostgreSQL and Redis that ./dev test provides.
"""

import contextlib
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.roles import ROLES
from dcportal.processes import Daphne, Simulator, StateWorker, environment
from state import operations
from state.worker import apply_batch

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = (*ROLES, "superuser", "outsider")
# The processes tests start run the system checks (dcportal.E001 wants a key when DEBUG is off); ./dev test sets one.
os.environ.setdefault("DCPORTAL_SECRET_KEY", "tests-" + "k" * 60)


@pytest.fixture(autouse=True, scope="session")
def _channel_prefix():
    """Each test session gets its own channel namespace in the shared Redis."""
    from django.conf import settings

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = prefix
    os.environ["DCPORTAL_CHANNEL_PREFIX"] = prefix
    yield prefix


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher():
    """Personas are created by the hundred; PBKDF2 (~0.3 s each) would dominate the suite."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_group(request):
    """Transactional tests truncate every table; the Default group (id 1) must always exist."""
    if not any(f in request.fixturenames for f in ("db", "transactional_db", "live_server")) and not (
        request.node.get_closest_marker("django_db")
    ):
        return
    request.getfixturevalue("transactional_db" if _is_transactional(request) else "db")
    from subclouds.models import DEFAULT_GROUP_ID, DEFAULT_GROUP_NAME, SubcloudGroup

    SubcloudGroup.objects.get_or_create(
        id=DEFAULT_GROUP_ID, defaults={"name": DEFAULT_GROUP_NAME, "description": "Default Subcloud Group"}
    )


def _is_transactional(request):
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))


def make_user(persona, username=None):
    from django.contrib.auth import get_user_model

    from accounts.roles import set_role

    user = get_user_model().objects.create_user(username or f"{persona}-{uuid.uuid4().hex[:6]}", password="pw-12345678")
    if persona == "superuser":
        user.is_superuser = user.is_staff = True
        user.save()
    elif persona in ROLES:
        set_role(user, persona)
    return user


@pytest.fixture
def client_as(db):
    """client_as("operator") -> an APIClient sending that persona's X-Auth-Token; None -> no credentials."""

    def make(persona, header="X-Auth-Token"):
        client = APIClient()
        if persona is None:
            return client
        _, token = ApiToken.objects.issue(make_user(persona))
        if header == "X-Auth-Token":
            client.credentials(HTTP_X_AUTH_TOKEN=token)
        else:
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        client.token = token
        return client

    return make


@pytest.fixture
def subcloud_factory(db):
    counter = iter(range(1, 10**6))

    def make(name=None, **fields):
        return operations.register_subcloud({"name": name or f"sc{next(counter)}", **fields})

    return make


def drain_updates(worker="test"):
    """Apply every pending update in this process (the same code the workers run)."""
    total = 0
    while True:
        result = apply_batch(1000, worker)
        if not result.subclouds:
            return total
        total += result.applied + result.noops


@pytest.fixture
def drain(db):
    return drain_updates


@pytest.fixture
def workers(transactional_db, tmp_path):
    """workers(n) starts n real state worker processes; all are stopped after the test."""
    started = []

    def start(n=1, prefix="w", batch=None, sweep=None):
        env = environment(connection.settings_dict["NAME"], state_heartbeat_seconds=0.5,
                          state_sweep_seconds=sweep or os.environ.get("DCPORTAL_STATE_SWEEP_SECONDS", "0.5"))
        new = [StateWorker(f"{prefix}{len(started) + i}", tmp_path, env, batch) for i in range(n)]
        started.extend(new)
        return [w.start(timeout=20) for w in new]

    yield start
    for w in started:
        w.kill(signal.SIGTERM)
    # Workers hold pooled connections; make sure none outlives the test (the DB is flushed next).
    for w in started:
        assert w.proc.returncode is not None


def keep_logs(tmp_path_factory, root, name, extra=()):
    """Copies root's *.log (and `extra` files) to a kept pytest directory named `name`, then removes root:
    the processes' logs outlive a run whose scratch directory had to live in /tmp (socket paths are short)."""
    logs = tmp_path_factory.mktemp(name)
    for log in [*root.glob("*.log"), *extra]:
        with contextlib.suppress(OSError):
            shutil.copy(log, logs / log.name)
    shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate, timeout=20, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def simulator_fixtures(count, prefix):
    """(simulator, sim) fixtures for a test module: a module-wide subcloud simulator on 127.0.0.1,
    reset before each test to every subcloud online and in sync, receivers up with their counts cleared.

    Use: `simulator, sim = simulator_fixtures(6, "sc")` at module level.
    """

    @pytest.fixture(scope="module")
    def simulator(tmp_path_factory):

        started = Simulator(count, tmp_path_factory.mktemp("sim"), environment("unused", "unused"), prefix=prefix).start()
        yield started
        started.stop()

    @pytest.fixture
    def sim(simulator):
        simulator.control(action="online", all=True)
        simulator.control(action="sync", all=True)
        for kind in ("dcorch", "certmon"):
            simulator.control(action="receiver-up", receiver=kind)
            simulator.control(action="receiver-reset", receiver=kind)
        return simulator

    return simulator, sim


def daphne_on_test_db(log_dir, port=None, **settings):
    """A real daphne (dcportal.processes.Daphne) on the test database with DCPORTAL_* `settings`; call .start()."""
    return Daphne(log_dir, environment(connection.settings_dict["NAME"], db_pool_max=2, **settings), port=port)
