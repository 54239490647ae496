"""Deployment: strict environment, system checks, HTTPS switches, CSP, private caching, application_name."""

import os
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from dcportal.env import env_bool, env_database_url, env_float, env_int, env_list, process_name
from tests.conftest import make_user, wait_until

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    """manage.py ARGS in a child process with env on top of ours (a value of None removes the variable)."""
    child = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=child, capture_output=True, text=True,
                          timeout=120)


# ---- strict environment ----------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("yes", True), ("ON", True), ("1", True), ("true", True),
                                             ("no", False), ("off", False), ("0", False), ("False", False)])
def test_it_reads_the_documented_boolean_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("DCPORTAL_X", value)
    assert env_bool("DCPORTAL_X", default=not expected) is expected


@pytest.mark.parametrize("reader, value", [(env_bool, "ture"), (env_bool, "2"), (env_int, "1.5"), (env_int, "ten"),
                                           (env_float, "fast"), (env_float, "nan"), (env_int, "-1")])
def test_it_refuses_a_bad_value_naming_the_variable(monkeypatch, reader, value):
    monkeypatch.setenv("DCPORTAL_X", value)
    with pytest.raises(ImproperlyConfigured, match=f"DCPORTAL_X='{value}'"):
        reader("DCPORTAL_X", minimum=0) if reader is not env_bool else reader("DCPORTAL_X")


def test_it_gives_the_default_for_an_unset_or_empty_variable_and_splits_lists(monkeypatch):
    monkeypatch.setenv("DCPORTAL_X", "")
    assert env_int("DCPORTAL_X", default=7) == 7
    monkeypatch.setenv("DCPORTAL_X", " a.example, b.example ,,")
    assert env_list("DCPORTAL_X") == ["a.example", "b.example"]


def test_it_stops_a_process_whose_setting_is_malformed():
    r = manage("check", DCPORTAL_HTTPS="maybe")
    assert r.returncode != 0
    assert "DCPORTAL_HTTPS='maybe'" in r.stderr


@pytest.mark.parametrize("url, host, port", [
    # docs/ha.md: a primary and its standby, the one accepting writes found at each new connection
    ("postgres://u:p@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write", "10.0.0.1,10.0.0.2", "5432,5433"),
    ("postgres://u:p@/db?host=10.0.0.1,10.0.0.2&port=5432,5433&target_session_attrs=read-write",
     "10.0.0.1,10.0.0.2", "5432,5433"),
    ("postgres://u@a,b/db", "a,b", ""),
    ("postgres://u:p@[::1]:5432/db", "::1", "5432"),
    ("postgres://postgres@/postgres?host=/tmp/pg%20dir", "/tmp/pg dir", ""),  # pgserver's unix socket form
])
def test_it_reads_a_database_url_with_one_host_or_several(monkeypatch, url, host, port):
    monkeypatch.setenv("DATABASE_URL", url)
    config = env_database_url("DATABASE_URL", default="")
    assert (config["HOST"], config["PORT"]) == (host, port)
    assert config["NAME"] == ("postgres" if "pgserver" in url or "/postgres?" in url else "db")
    assert "host" not in config["OPTIONS"] and "port" not in config["OPTIONS"]


@pytest.mark.parametrize("url, why", [
    ("postgres://u:s3cret@h1:5001,h2/db", "every host its port"),  # django-environ: port 5001 for both
    ("postgres://u:s3cret@h1:abc/db", "not HOST or HOST:PORT"),
    ("postgres://u:s3cret@h1:5001,:5002/db", "not HOST or HOST:PORT"),
    ("postgres://u:s3cret@/db?host=a,b,c&port=1,2", "2 ports for 3 hosts"),
    ("postgres://u:s3cret@h/db?target_session_attrs=readwrite", "target_session_attrs must be one of"),
    ("mysql://u:s3cret@h/db", "not PostgreSQL's"),
    ("postgres://u:s3cret@h/", "no database name"),
])
def test_it_refuses_a_bad_database_url_naming_it_without_the_password(monkeypatch, url, why):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ImproperlyConfigured, match="^DATABASE_URL=") as refused:
        env_database_url("DATABASE_URL", default="")
    assert why in str(refused.value) and "s3cret" not in str(refused.value)


def test_it_stops_a_process_whose_database_url_is_malformed():
    r = manage("check", DATABASE_URL="postgres://u:s3cret@h1:5432,h2/db")
    assert r.returncode != 0
    assert "DATABASE_URL='postgres://u:***@h1:5432,h2/db'" in r.stderr and "s3cret" not in r.stderr


# ---- system checks --------------------------------------------------------------------------

def test_it_errors_when_debug_is_off_and_no_secret_key_is_set():
    r = manage("check", DCPORTAL_SECRET_KEY=None, DCPORTAL_DEBUG=None)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "dcportal.E001" in r.stderr
    assert manage("check", DCPORTAL_SECRET_KEY=None, DCPORTAL_DEBUG="on").returncode == 0
    assert manage("check", DCPORTAL_SECRET_KEY=secrets.token_urlsafe(48)).returncode == 0


def test_it_errors_when_the_audit_lock_can_expire_during_one_probe():
    r = manage("check", DCPORTAL_AUDIT_LOCK_SECONDS="5", DCPORTAL_AUDIT_TIMEOUT="10")
    assert r.returncode == 1
    assert "dcportal.E003" in r.stderr


HTTPS_ENV = {"DCPORTAL_HTTPS": "true", "DCPORTAL_HSTS_PRELOAD": "true", "DCPORTAL_PROXY_SSL_HEADER": "X-Forwarded-Proto",
             "DCPORTAL_ALLOWED_HOSTS": "portal.example.com", "DCPORTAL_DEBUG": "false"}


def test_it_passes_check_deploy_in_the_https_configuration():
    r = manage("check", "--deploy", "--fail-level", "WARNING", DCPORTAL_SECRET_KEY=secrets.token_urlsafe(48), **HTTPS_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues" in r.stdout
    r = manage("shell", "-c", "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
               " s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)",
               DCPORTAL_SECRET_KEY=secrets.token_urlsafe(48), **HTTPS_ENV)
    assert r.stdout.strip().splitlines()[-1] == "True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https')", r.stderr


# ---- pages: CSP, no inline script, private caching ---------------------------------------------

class InlineCode(HTMLParser):
    """Collects <script> elements that would execute without a src, and on* handler attributes."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
            if not attrs.get("src") and attrs.get("type") != "application/json":
                self.found.append(f"inline <script {attrs}>")
        self.found += [f"<{tag} {name}=...>" for name in attrs if name.lower().startswith("on")]


@pytest.mark.django_db
def test_it_sends_a_csp_and_serves_no_inline_script_or_handler(client, subcloud_factory):
    subcloud_factory("sc1")
    user = make_user("superuser")
    anonymous = [client.get("/login/")]
    client.force_login(user)
    pages = ["/portal/", "/portal/subclouds/", "/portal/subclouds/sc1/", "/portal/alarms/", "/v1.0/docs", "/admin/",
             "/admin/auth/user/"]
    responses = anonymous + [client.get(url) for url in pages]
    scripts = 0
    for r in responses:
        assert r.status_code == 200, (r.request["PATH_INFO"], r.status_code)
        csp = r["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        parser = InlineCode()
        parser.feed(r.content.decode())
        assert parser.found == [], (r.request["PATH_INFO"], parser.found)
        scripts += parser.scripts
    assert scripts >= len(pages)  # the parser really saw the pages' scripts
    script = client.get("/v1.0/docs?script")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


@pytest.mark.django_db
def test_it_marks_authenticated_pages_and_api_answers_private_no_store(client, client_as):
    api = client_as("reader").get("/v1.0/subclouds")
    assert api.status_code == 200
    assert api["Cache-Control"] == "private, no-store"
    client.force_login(make_user("reader"))
    page = client.get("/portal/subclouds/")
    assert page.status_code == 200
    assert page["Cache-Control"] == "private, no-store"
    anonymous = client_as(None).get("/healthz")
    assert "no-store" not in anonymous.get("Cache-Control", "")


def test_it_keeps_the_csrf_cookie_from_scripts(client):
    r = client.get("/login/")
    assert r.cookies["csrftoken"]["httponly"] is True


# ---- application_name ------------------------------------------------------------------------------

def test_it_derives_each_process_name_from_its_command_line(monkeypatch):
    monkeypatch.delenv("DCPORTAL_PROCESS_NAME", raising=False)
    assert process_name(["manage.py", "runworker", "dcmanager-state", "--name", "s1"]) == "dcportal-state/s1"
    assert process_name(["/v/lib/celery/__main__.py", "-A", "dcportal", "worker"]) == "dcportal-audit"
    assert process_name(["/v/lib/celery/__main__.py", "-A", "dcportal", "beat"]) == "dcportal-audit-beat"
    assert process_name(["/v/lib/daphne/__main__.py", "-b", "::"]) == "dcportal-api"
    assert process_name(["/opt/dcportal/manage.py", "simulate_subclouds"]) == "dcportal-simulate_subclouds"
    monkeypatch.setenv("DCPORTAL_PROCESS_NAME", "api-node2")
    assert process_name(["manage.py", "migrate"]) == "api-node2"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_shows_a_state_worker_in_pg_stat_activity_by_its_name(workers):
    workers(1, prefix="appname-")

    def sessions():
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
                        ["dcportal-state/appname-0", connection.settings_dict["NAME"]])
            return cur.fetchone()[0]

    assert wait_until(sessions, timeout=30, message="the worker's named connection")
