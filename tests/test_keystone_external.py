"""A real Keystone (PyPI `keystone`, its own virtualenv) as the system controller's identity service.

keystoneauth1 sessions (what the dcmanager shell and dcorch use) log in there with a password, find
dcportal as the dcmanager endpoint in the catalog, and drive a real daphne configured with
DCPORTAL_KEYSTONE_*: dcportal validates their tokens at that Keystone (accounts/keystone.py).
The first run creates the virtualenv (tests/keystone/requirements.txt), about a minute of pip.
"""

import fcntl
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.models import ApiToken
from accounts.roles import role_of
from dcportal.processes import Process, free_port
from portal.limits import REVOKED
from tests.conftest import daphne_on_test_db, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HERE = Path(__file__).parent / "keystone"
REQUIREMENTS = HERE / "requirements.txt"
ADMIN_PASSWORD = "bootstrap-secret"
PASSWORD = "user-secret-1"
# name: (project, Keystone role). dcmanager is dcportal's own service user (validates tokens), as in StarlingX.
USERS = {
    "dcmanager": ("services", "admin"),
    "dcorch": ("services", "admin"),
    "sysadmin": ("admin", "admin"),
    "oper": ("admin", "operator"),
    "config": ("admin", "configurator"),
    "viewer": ("admin", "reader"),
    "outsider": ("other", "admin"),
}
DCMANAGER = {"service_type": "dcmanager", "interface": "internal"}


def keystone_venv():
    """The Keystone virtualenv, made when missing (or made from other requirements); path of its bin/."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = Path(f"/tmp/dcportal-keystone-venv-{digest}")
    done = venv / "installed"
    with open(f"{venv}.lock", "w") as lock:  # another test run making it at the same time waits for it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            _install(venv, done)
    return venv / "bin"


def _install(venv, done):
    """A fresh virtualenv with tests/keystone/requirements.txt; pip's output in <venv>.log."""
    started = time.monotonic()
    log = Path(f"{venv}.log")
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, stdout=out, stderr=out)
        pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-r", str(REQUIREMENTS)],
                             stdout=out, stderr=out)
    assert pip.returncode == 0, f"pip install keystone failed:\n{log.read_text()[-4000:]}"
    done.write_text(f"installed in {time.monotonic() - started:.0f}s\n")


class Keystone(Process):
    """keystone's WSGI application under werkzeug (tests/keystone/serve.py); ready when /v3 answers."""

    def __init__(self, bin_dir, conf, log_dir, port):
        self.url = f"http://127.0.0.1:{port}/v3"
        super().__init__("keystone", [str(bin_dir / "python"), str(HERE / "serve.py"), str(conf), str(port)], log_dir)

    def ready(self):
        try:
            return httpx.get(self.url, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False


def password_session(auth_url, username, project, password=PASSWORD):
    """What dcmanagerclient builds from OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME and the domains."""
    auth = v3.Password(auth_url=auth_url, username=username, password=password, project_name=project,
                       user_domain_name="Default", project_domain_name="Default")
    return ks_session.Session(auth=auth)


def _create(admin, path, key, **fields):
    r = admin.post(path, json={key: fields})
    assert r.status_code == 201, r.text
    return r.json()[key]["id"]


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    """A bootstrapped Keystone on 127.0.0.1 (sqlite, fernet tokens) with StarlingX-like projects, roles and users,
    and a dcmanager service whose endpoints name the port the tests' daphne will listen on."""
    bin_dir = keystone_venv()
    root = tmp_path_factory.mktemp("keystone")
    port, dcportal_port = free_port(), free_port()
    conf = root / "keystone.conf"
    conf.write_text(
        f"[database]\nconnection = sqlite:///{root}/keystone.db\n"
        f"[fernet_tokens]\nkey_repository = {root}/fernet\n[fernet_receipts]\nkey_repository = {root}/fernet\n"
        f"[credential]\nkey_repository = {root}/credential\n[token]\nprovider = fernet\n"
    )
    manage = [str(bin_dir / "keystone-manage"), "--config-file", str(conf)]
    with open(root / "manage.log", "ab") as log:
        for step in (["db_sync"], ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
                     ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
                     ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-region-id", "SystemController",
                      "--bootstrap-public-url", f"http://127.0.0.1:{port}/v3"]):
            subprocess.run(manage + step, check=True, stdout=log, stderr=subprocess.STDOUT)
    server = Keystone(bin_dir, conf, root, port).start(timeout=120)
    admin = password_session(server.url, "admin", "admin", ADMIN_PASSWORD)
    base = server.url
    roles = {r["name"]: r["id"] for r in admin.get(f"{base}/roles").json()["roles"]}
    for name in {"operator", "configurator", "service"} - set(roles):  # bootstrap makes admin, member, reader (service)
        roles[name] = _create(admin, f"{base}/roles", "role", name=name)
    projects = {p["name"]: p["id"] for p in admin.get(f"{base}/projects").json()["projects"]}
    for name in ("services", "other"):
        projects[name] = _create(admin, f"{base}/projects", "project", name=name, domain_id="default")
    for name, (project, role) in USERS.items():
        user_id = _create(admin, f"{base}/users", "user", name=name, password=PASSWORD, domain_id="default")
        r = admin.put(f"{base}/projects/{projects[project]}/users/{user_id}/roles/{roles[role]}")
        assert r.status_code == 204, r.text
    service = _create(admin, f"{base}/services", "service", type="dcmanager", name="dcmanager")
    for interface in ("public", "internal", "admin"):
        _create(admin, f"{base}/endpoints", "endpoint", service_id=service, interface=interface,
                region_id="SystemController", url=f"http://127.0.0.1:{dcportal_port}/v1.0")
    server.dcportal_port = dcportal_port
    yield server
    server.stop()


@pytest.fixture
def start_dcportal(keystone, transactional_db, tmp_path):
    """start_dcportal(**settings): daphne on the port the catalog names, validating tokens at `keystone`."""
    started = []

    def start(**settings):
        settings = {"keystone_url": keystone.url, "keystone_username": "dcmanager", "keystone_password": PASSWORD,
                    "keystone_project": "services", **settings}
        started.append(daphne_on_test_db(tmp_path, port=keystone.dcportal_port, **settings).start())
        return started[-1]

    yield start
    for daphne in started:
        daphne.stop()


def keystone_user(name):
    return get_user_model().objects.get(username=f"keystone:{name}@Default")


def test_it_lets_a_keystone_session_find_dcportal_in_the_catalog_and_drive_it(keystone, start_dcportal, subcloud_factory):
    subcloud_factory("sc1")
    daphne = start_dcportal()
    session = password_session(keystone.url, "oper", "admin")
    assert session.get_endpoint(**DCMANAGER) == f"{daphne.url}/v1.0"
    r = session.get("/subclouds", endpoint_filter=DCMANAGER)
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["subclouds"]] == ["sc1"]
    r = session.patch("/subclouds/sc1", json={"description": "via a real keystone"}, endpoint_filter=DCMANAGER)
    assert r.status_code == 200
    assert r.json()["description"] == "via a real keystone"
    user = keystone_user("oper")
    assert role_of(user) == "operator"
    assert not user.has_usable_password()


def test_it_takes_state_updates_from_a_service_user_of_the_services_project(keystone, start_dcportal, subcloud_factory):
    subcloud_factory("sc1")
    start_dcportal()
    dcorch = password_session(keystone.url, "dcorch", "services")
    r = dcorch.post("/state/availability", endpoint_filter=DCMANAGER, raise_exc=False,
                    json={"subcloud": "sc1", "availability_status": "online", "audit_fail_count": 0})
    assert r.status_code == 202, r.text
    assert role_of(keystone_user("dcorch")) == "service"


@pytest.mark.parametrize(("name", "project", "role", "write"), [
    ("sysadmin", "admin", "operator", 200),  # StarlingX's admin in the admin project
    ("config", "admin", "operator", 200),
    ("viewer", "admin", "reader", 403),
])
def test_it_maps_keystone_roles_to_dcportal_roles(keystone, start_dcportal, subcloud_factory, name, project, role, write):
    subcloud_factory("sc1")
    start_dcportal()
    session = password_session(keystone.url, name, project)
    assert session.get("/subclouds", endpoint_filter=DCMANAGER).status_code == 200
    r = session.patch("/subclouds/sc1", json={"description": "x"}, endpoint_filter=DCMANAGER, raise_exc=False)
    assert r.status_code == write
    assert role_of(keystone_user(name)) == role


def test_it_refuses_a_token_of_a_project_it_does_not_serve(keystone, start_dcportal):
    daphne = start_dcportal()
    token = password_session(keystone.url, "outsider", "other").get_token()
    r = httpx.get(f"{daphne.url}/v1.0/subclouds", headers={"X-Auth-Token": token}, trust_env=False)
    assert r.status_code == 401
    assert "error_message" in r.json()
    assert not get_user_model().objects.filter(username__startswith="keystone:outsider").exists()


def test_it_refuses_a_revoked_token_once_the_cache_bound_has_passed(keystone, start_dcportal):
    daphne = start_dcportal(keystone_cache_seconds=2)
    session = password_session(keystone.url, "oper", "admin")
    token = session.get_token()
    headers = {"X-Auth-Token": token}
    assert httpx.get(f"{daphne.url}/v1.0/subclouds", headers=headers, trust_env=False).status_code == 200
    r = session.delete(f"{keystone.url}/auth/tokens", headers={"X-Subject-Token": token})
    assert r.status_code == 204
    deadline = time.monotonic() + 60  # 2 s of cache; the rest is slack for a busy machine
    while (code := httpx.get(f"{daphne.url}/v1.0/subclouds", headers=headers, trust_env=False).status_code) == 200:
        assert time.monotonic() < deadline, "a revoked token still works long after the cache bound"
        time.sleep(0.5)
    assert code == 401


def test_it_closes_a_websocket_whose_keystone_token_was_revoked(keystone, start_dcportal):
    daphne = start_dcportal(keystone_cache_seconds=1, ws_recheck_seconds=0.5)
    session = password_session(keystone.url, "viewer", "admin")
    token = session.get_token()
    url = daphne.url.replace("http://", "ws://") + "/ws/status/"
    with connect(url, additional_headers={"X-Auth-Token": token}, open_timeout=10, proxy=None, max_size=None) as ws:
        ws.recv(timeout=10)  # the snapshot: the handshake took the Keystone token
        assert session.delete(f"{keystone.url}/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=60)  # 1 s of cache and 0.5 s between re-checks; the rest is slack
    assert closed.value.rcvd.code == REVOKED


def test_it_answers_503_while_keystone_is_stopped_and_still_takes_its_own_tokens(keystone, start_dcportal):
    daphne = start_dcportal(keystone_cache_seconds=0, keystone_timeout_seconds=3)
    token = password_session(keystone.url, "oper", "admin").get_token()
    own = ApiToken.objects.issue(make_user("reader"))[1]
    keystone.stop()
    try:
        r = httpx.get(f"{daphne.url}/v1.0/subclouds", headers={"X-Auth-Token": token}, trust_env=False, timeout=30)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "5"
        assert "Keystone" in r.json()["error_message"]
        assert set(r.json()) == {"error_message", "field", "errors"}
        r = httpx.get(f"{daphne.url}/v1.0/subclouds", headers={"X-Auth-Token": own}, trust_env=False, timeout=30)
        assert r.status_code == 200
    finally:
        keystone.launch().start(timeout=120)
    r = httpx.get(f"{daphne.url}/v1.0/subclouds", headers={"X-Auth-Token": token}, trust_env=False, timeout=30)
    assert r.status_code == 200
