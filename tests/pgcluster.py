"""A PostgreSQL primary + synchronous standby under Patroni, with one etcd, all on 127.0.0.1 (docs/ha.md).

Patroni runs as the `postgres` system user (PostgreSQL refuses root) with docs/ha.md's patroni.yml block,
unchanged; each node's name, addresses, data directory and passwords come from its environment, as
the document's environment file gives them. Every process is stopped by `close()`, which a fixture calls
in its finalizer.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psycopg

from dcportal.processes import Process, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT = 120  # seconds for etcd, initdb + primary, basebackup + standby on a busy 2-core machine


def patroni_yml():
    """docs/ha.md's Patroni configuration, exactly as the document shows it."""
    found = re.search(r"```yaml\n(# patroni\.yml.*?)```", (ROOT / "docs/ha.md").read_text(), re.S)
    assert found, "docs/ha.md has no ```yaml block starting with '# patroni.yml'"
    return found.group(1)


def available():
    """Why the cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (to run Patroni as the postgres user)"
    missing = [c for c in ("patroni", "etcd") if not shutil.which(c)] + \
              [str(p) for p in (BIN_DIR / "postgres", BIN_DIR / "pg_rewind") if not p.exists()]
    if missing:
        return f"missing {', '.join(missing)} (./dev test apt-installs patroni, etcd-server and postgresql-15 as root)"
    return None


def wait(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, psycopg.Error, OSError, ValueError):
            if predicate():
                return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Etcd(Process):
    """One etcd member on loopback with its own data directory (production runs three: docs/ha.md)."""

    def __init__(self, root):
        self.port, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = ["etcd", "--name", "e0", "--data-dir", str(root / "etcd"), "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"e0=http://127.0.0.1:{peer}", "--initial-cluster-state", "new"]
        super().__init__("etcd", argv, root, env={"PATH": os.environ["PATH"], "ETCD_UNSUPPORTED_ARCH": ""})

    def ready(self):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            return httpx.get(self.url + "/health", timeout=1, trust_env=False).json().get("health") == "true"
        return False


class PatroniNode(Process):
    """One Patroni agent (and so one PostgreSQL) as `postgres`, its per-node settings in its environment."""

    def __init__(self, name, root, config, etcd, passwords):
        self.node, self.pg_port, self.api_port = name, free_port(), free_port()
        self.data_dir = root / name
        self.api = f"http://127.0.0.1:{self.api_port}"
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": str(root),
            "PATRONI_NAME": name,
            "PATRONI_ETCD3_HOSTS": f"127.0.0.1:{etcd.port}",
            "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{self.api_port}",
            "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{self.api_port}",
            "PATRONI_POSTGRESQL_LISTEN": f"127.0.0.1:{self.pg_port}",
            "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"127.0.0.1:{self.pg_port}",
            "PATRONI_POSTGRESQL_DATA_DIR": str(self.data_dir),
            "PATRONI_POSTGRESQL_PGPASS": str(root / f"{name}.pgpass"),
            **{f"PATRONI_{user.upper()}_PASSWORD": pw for user, pw in passwords.items() if user != "dcportal"},
        }
        self.superuser_password = passwords["superuser"]
        argv = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "patroni", str(config)]
        super().__init__(f"patroni-{name}", argv, root, env=env)

    def status(self):
        """Patroni's own view of this node (GET /patroni): role, state, timeline."""
        return httpx.get(self.api + "/patroni", timeout=2, trust_env=False).json()

    def role(self):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            status = self.status()
            return status.get("role") if status.get("state") == "running" else None
        return None

    def sql(self, query, params=(), dbname="postgres"):
        with psycopg.connect(host="127.0.0.1", port=self.pg_port, user="postgres", password=self.superuser_password,
                             dbname=dbname, autocommit=True, connect_timeout=3) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def postmaster_pid(self):
        """The postmaster's pid, from the first line of postmaster.pid."""
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


class PgCluster:
    """etcd + two Patroni nodes; `dsn(user, password, db)` is dcportal's multi-host DATABASE_URL."""

    def __init__(self, root):
        self.root = root
        self.nodes = []
        self.etcd = None
        self.passwords = {u: secrets.token_urlsafe(16) for u in ("superuser", "replication", "rewind", "dcportal")}

    def start(self):
        shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        config = self.root / "patroni.yml"
        config.write_text(patroni_yml())
        self.etcd = Etcd(self.root)  # kept before it is ready: close() must stop it even if start() fails
        self.etcd.start(timeout=START_TIMEOUT)
        # PostgreSQL's unix sockets (Debian's default directory; the two nodes differ by port).
        Path("/var/run/postgresql").mkdir(exist_ok=True)
        shutil.chown("/var/run/postgresql", "postgres", "postgres")
        self.nodes.append(PatroniNode("pg1", self.root, config, self.etcd, self.passwords))
        wait(lambda: self.nodes[0].role() in ("primary", "master"), START_TIMEOUT, "pg1 to bootstrap as primary")
        self.nodes.append(PatroniNode("pg2", self.root, config, self.etcd, self.passwords))
        wait(lambda: self.sync_standby() == "pg2", START_TIMEOUT, "pg2 as the synchronous standby")
        self.primary().sql(f"CREATE ROLE dcportal LOGIN PASSWORD '{self.passwords['dcportal']}'")
        self.primary().sql("CREATE DATABASE dcportal OWNER dcportal")
        return self

    def dsn(self):
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (f"postgres://dcportal:{self.passwords['dcportal']}@{hosts}/dcportal"
                "?target_session_attrs=read-write&connect_timeout=3")

    def primary(self):
        found = [n for n in self.nodes if n.alive() and n.role() in ("primary", "master")]
        assert len(found) <= 1, "two primaries"
        return found[0] if found else None

    def node(self, name):
        return next(n for n in self.nodes if n.node == name)

    def sync_standby(self):
        """The name of the standby the primary reports as synchronous (pg_stat_replication), or None."""
        primary = self.primary()
        if primary is None:
            return None
        rows = primary.sql("SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'")
        return rows[0][0] if rows else None

    def close(self):
        for node in reversed(self.nodes):
            node.stop(signal.SIGTERM, timeout=30)  # Patroni stops its PostgreSQL (fast shutdown) and releases its keys
        for node in self.nodes:  # a PostgreSQL left by a Patroni that had to be SIGKILLed
            pid = node.data_dir / "postmaster.pid"
            if pid.exists():
                subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                                str(BIN_DIR / "pg_ctl"), "-D", str(node.data_dir), "-m", "immediate", "-w", "-t", "20",
                                "stop"], capture_output=True, timeout=30)
        if self.etcd is not None:
            self.etcd.stop(timeout=15)
