"""Onboarding: register N subclouds in one bulk request, then delete them all, against raw SQL floors.

Through daphne: POST /v1.0/subcloud-bulk-register (every item validated, the one
namespace of names and region names checked under its lock, subclouds + 7 endpoint
rows each + a change-log row each), then POST /v1.0/subcloud-bulk-actions with
action delete (the rules' check, alarms cleared, change log, the rows deleted). The
floor, in the same run and database: the same rows written by raw psycopg in one
transaction (COPY of the subclouds, INSERT ... SELECT of their endpoints and log rows)
and removed the same way, with no validation at all. A sample registered one by one
through dcmanager's POST /v1.0/subclouds shows what bulk saves.
"""

import argparse
import sys

import httpx

from dcportal.processes import free_port
from subclouds.choices import ENDPOINT_TYPES

from . import harness
from .dead_office import reset_fleet


def item(i, prefix):
    """One subcloud as an operator would describe it (all the addresses, a description, a location)."""
    third, fourth = divmod(i, 256)
    return {
        "name": f"{prefix}{i}", "description": f"site {i}", "location": f"rack {i % 40}",
        "management-subnet": f"10.{third % 256}.{fourth}.0/24", "management-start-ip": f"10.{third % 256}.{fourth}.2",
        "management-end-ip": f"10.{third % 256}.{fourth}.50", "management-gateway-ip": f"10.{third % 256}.{fourth}.1",
        "systemcontroller-gateway-ip": "192.168.204.101", "software-version": "24.09",
    }


def _connect():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"],
                           password=db["PASSWORD"] or None)


def raw_register(n, prefix):
    """Seconds for raw psycopg to write the same rows in one transaction: the floor (no checks, no lock)."""
    with _connect() as conn, harness.timer() as t:
        with conn.cursor() as cur:
            with cur.copy("COPY subclouds_subcloud (name, region_name, description, location, software_version, "
                          "management_state, availability_status, deploy_status, error_description, audit_fail_count, "
                          "first_identity_sync_complete, openstack_installed, group_id, management_subnet, "
                          "management_start_ip, management_end_ip, management_gateway_ip, systemcontroller_gateway_ip, "
                          "created_at) FROM STDIN") as copy:
                for i in range(n):
                    it = item(i, prefix)
                    copy.write_row((it["name"], f"r-{it['name']}", it["description"], it["location"], "24.09", "unmanaged",
                                    "offline", "complete", "No errors present", 0, False, False, 1,
                                    it["management-subnet"], it["management-start-ip"], it["management-end-ip"],
                                    it["management-gateway-ip"], it["systemcontroller-gateway-ip"], "now"))
            cur.execute("INSERT INTO subclouds_endpointstatus (subcloud_id, endpoint_type, sync_status) "
                        "SELECT s.id, e, 'unknown' FROM subclouds_subcloud s, unnest(%s::text[]) e WHERE s.name LIKE %s",
                        [list(ENDPOINT_TYPES), f"{prefix}%"])
            cur.execute("INSERT INTO state_statechange (subcloud_id, subcloud_name, changes, previous, faults_raised, "
                        "faults_cleared, reason, created_at) SELECT id, name, '{\"registered\": true}', '{}', '[]', '[]', "
                        "'registered', now() FROM subclouds_subcloud WHERE name LIKE %s", [f"{prefix}%"])
        conn.commit()
    return t["seconds"]


def raw_delete(prefix):
    """Seconds for raw psycopg to log and remove the same subclouds in one transaction (the floor of delete)."""
    like = [f"{prefix}%"]
    with _connect() as conn, harness.timer() as t:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM subclouds_subcloud WHERE name LIKE %s ORDER BY id FOR NO KEY UPDATE", like)
            ids = [r for (r,) in cur.fetchall()]
            cur.execute("INSERT INTO state_statechange (subcloud_id, subcloud_name, changes, previous, faults_raised, "
                        "faults_cleared, reason, created_at) SELECT id, name, '{\"deleted\": true}', '{}', '[]', '[]', "
                        "'deleted', now() FROM subclouds_subcloud WHERE id = ANY(%s)", [ids])
            cur.execute("DELETE FROM subclouds_endpointstatus WHERE subcloud_id = ANY(%s)", [ids])
            cur.execute("DELETE FROM state_stateupdate WHERE subcloud_id = ANY(%s)", [ids])
            for table in ("state_statechange", "state_outbox", "subclouds_fault"):
                cur.execute(f"UPDATE {table} SET subcloud_id = NULL WHERE subcloud_id = ANY(%s)", [ids])
            cur.execute("DELETE FROM subclouds_subcloud WHERE id = ANY(%s)", [ids])
        conn.commit()
    return t["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench onboarding", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--one-by-one-sample", type=int, default=200,
                        help="subclouds registered through the single POST, for comparison")
    args = parser.parse_args(argv)
    harness.setup_django()
    from subclouds.models import Subcloud

    n = args.subclouds
    reset_fleet(0)
    floor_register = raw_register(n, "floor")
    floor_delete = raw_delete("floor")
    token = harness.issue_token("operator")
    port = free_port()
    body = {"subclouds": [item(i, "site") for i in range(n)]}
    with harness.Processes(harness.RESULTS / "logs") as procs:
        procs.daphne(port)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=600)
        client.get("/v1.0/subclouds", params={"name": "warm-up"}).raise_for_status()
        with harness.timer() as reg:
            r = client.post("/v1.0/subcloud-bulk-register", json=body)
        assert r.status_code == 200, r.text[:500]
        registered = Subcloud.objects.filter(name__startswith="site").count()
        if registered != n:
            raise RuntimeError(f"{registered} of {n} registered")
        with harness.timer() as dele:
            r = client.post("/v1.0/subcloud-bulk-actions", json={"action": "delete", "subclouds": [f"site{i}" for i in range(n)]})
        assert r.status_code == 200 and r.json()["done"] == n, r.text[:500]
        sample = args.one_by_one_sample
        with harness.timer() as single:
            for i in range(sample):
                client.post("/v1.0/subclouds", json=item(i, "single")).raise_for_status()
    single_rate = sample / single["seconds"]
    body_bytes = len(httpx.Request("POST", "http://x", json=body).content)
    rows = [
        ("subclouds", n, ""),
        ("bulk register request body, bytes", body_bytes, ""),
        ("bulk register, s (HTTP, validated, all or none)", reg["seconds"], "<= 10 s"),
        ("floor: raw COPY/INSERT of the same rows, s", floor_register, "floor"),
        ("bulk register / floor", reg["seconds"] / floor_register, ""),
        ("bulk delete of the unmanaged fleet, s (HTTP, rules, change log)", dele["seconds"], "<= 10 s"),
        ("floor: raw DELETE of the same rows, s", floor_delete, "floor"),
        ("bulk delete / floor", dele["seconds"] / floor_delete, ""),
        (f"one by one (POST /v1.0/subclouds, {sample}): subclouds/s", single_rate, ""),
        ("bulk register subclouds/s / one by one", n / reg["seconds"] / single_rate, ""),
        ("load average (1 min) at the end", harness.load_average(), "shared machine"),
    ]
    harness.report("onboarding", rows, {"seconds": {"register": reg["seconds"], "delete": dele["seconds"],
                                                    "floor_register": floor_register, "floor_delete": floor_delete}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
