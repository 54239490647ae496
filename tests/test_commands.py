"""Admin commands (subcloud, subcloud_group, state_stats): the API's code, output and messages, without a token."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from state import intake, operations
from state.models import Outbox, OutboxKind, StateChange, StateUpdate, UpdateKind, WorkerHeartbeat
from subclouds import services
from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import DEFAULT_GROUP_ID, EndpointStatus, Fault, Subcloud, SubcloudGroup
from subclouds.representation import group_json, subclouds_json

from .conftest import ROOT, drain_updates

pytestmark = pytest.mark.django_db


def run(*args):
    """call_command with captured output; returns (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args):
    """The CommandError message of a refused command (its output must be empty)."""
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=out, stderr=StringIO())
    assert out.getvalue() == ""
    assert caught.value.returncode == 1
    return str(caught.value)


def rows_of(text):
    """A FIELD / VALUE table as {field: value} (columns are at least two spaces apart; "" prints nothing)."""
    return dict((re.split(r"\s{2,}", line, maxsplit=1) + [""])[:2] for line in text.splitlines()[1:])


def snapshot():
    """Everything a refused command must leave alone."""
    return (
        subclouds_json(Subcloud.objects.all()),
        [group_json(g) for g in SubcloudGroup.objects.order_by("id")],
        StateChange.objects.count(),
        Outbox.objects.count(),
        list(Fault.objects.values_list("alarm_id", "entity_instance_id", "cleared_at")),
    )


def go_online(*subclouds):
    intake.accept(UpdateKind.AVAILABILITY, [
        (s.pk, {"availability_status": "online", "update_state_only": False, "audit_fail_count": 0}) for s in subclouds
    ])
    drain_updates()


@pytest.fixture
def api(client_as):
    return client_as("operator")


@pytest.fixture
def fleet(subcloud_factory):
    """alpha: online, managed, in sync; beta (labs): online, unmanaged; gamma (labs): offline, secondary."""
    labs = services.create_group({"name": "labs", "description": "Lab subclouds"})
    alpha = subcloud_factory("alpha", software_version="24.09")
    beta = subcloud_factory("beta", group_id=labs)
    gamma = subcloud_factory("gamma", group_id=labs)
    go_online(alpha, beta)
    operations.update(alpha, {"management_state": "managed"})
    intake.accept(UpdateKind.BULK, [(alpha.pk, {"availability": None, "endpoints": dict.fromkeys(ENDPOINT_TYPES, "in-sync")})])
    drain_updates()
    Subcloud.objects.filter(pk=gamma.pk).update(deploy_status="secondary")
    return {"labs": labs, "alpha": alpha, "beta": beta, "gamma": gamma}


# subcloud list / show


def test_it_lists_exactly_the_apis_json(fleet, api):
    out, err = run("subcloud", "list", "--json")

    response = api.get("/v1.0/subclouds/")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    assert [s["name"] for s in json.loads(out)["subclouds"]] == ["alpha", "beta", "gamma"]
    assert err == ""


@pytest.mark.parametrize(
    ("options", "query", "names"),
    [
        (["--availability", "online"], {"availability-status": "online"}, ["alpha", "beta"]),
        (["--management", "managed"], {"management-state": "managed"}, ["alpha"]),
        (["--deploy-status", "secondary"], {"deploy-status": "secondary"}, ["gamma"]),
        (["--group", "labs"], {"group_id": "labs"}, ["beta", "gamma"]),
        (["--sync-status", "in-sync"], {"sync_status": "in-sync"}, ["alpha"]),
        (["--name", "AMM"], {"name": "AMM"}, ["gamma"]),
        (["--availability", "online", "--group", "labs"], {"availability-status": "online", "group_id": "labs"}, ["beta"]),
    ],
)
def test_it_filters_the_list_like_the_api(fleet, api, options, query, names):
    if "group_id" in query:
        query["group_id"] = fleet["labs"].pk

    out, _ = run("subcloud", "list", "--json", *options)

    response = api.get("/v1.0/subclouds", query)
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    assert [s["name"] for s in json.loads(out)["subclouds"]] == names


def test_it_prints_the_list_as_an_aligned_table(fleet):
    out, _ = run("subcloud", "list")

    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MANAGEMENT", "AVAILABILITY", "DEPLOY", "STATUS", "SYNC", "GROUP",
                                "SOFTWARE", "VERSION"]
    assert [line.split()[:7] for line in lines[1:]] == [
        [str(fleet["alpha"].pk), "alpha", "managed", "online", "complete", "in-sync", "Default"],
        [str(fleet["beta"].pk), "beta", "unmanaged", "online", "complete", "unknown", "labs"],
        [str(fleet["gamma"].pk), "gamma", "unmanaged", "offline", "secondary", "unknown", "labs"],
    ]
    for header in ("MANAGEMENT", "AVAILABILITY", "SYNC", "GROUP"):
        column = lines[0].index(header)
        assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines[1:]), header


def test_it_refuses_a_bad_filter_with_the_apis_message(fleet, api):
    message = refused("subcloud", "list", "--availability", "sideways")

    response = api.get("/v1.0/subclouds", {"availability-status": "sideways"})
    assert response.status_code == 400
    assert message == response.json()["error_message"]
    assert message.startswith("availability-status: ")


def test_it_refuses_to_list_an_unknown_group_as_the_group_api_does(fleet, api):
    message = refused("subcloud", "list", "--group", "nosuch")

    response = api.get("/v1.0/subcloud-groups/nosuch/subclouds")
    assert response.status_code == 404
    assert message == response.json()["error_message"] == "Subcloud group nosuch not found"


def test_it_shows_a_subcloud_by_id_name_or_region_as_the_api_does(fleet, api):
    beta = fleet["beta"]
    for ref in (beta.pk, beta.name, beta.region_name):
        out, _ = run("subcloud", "show", str(ref), "--json")

        response = api.get(f"/v1.0/subclouds/{ref}")
        assert response.status_code == 200
        assert out == response.content.decode() + "\n"
    out, _ = run("subcloud", "show", "beta", "--detail", "--json")
    response = api.get("/v1.0/subclouds/beta/detail")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    assert json.loads(out)["region_name"] == beta.region_name


def test_it_shows_a_subcloud_as_field_value_rows(fleet):
    out, _ = run("subcloud", "show", "alpha")

    rows = rows_of(out)
    assert out.splitlines()[0].split() == ["FIELD", "VALUE"]
    assert rows["name"] == "alpha"
    assert rows["management-state"] == "managed"
    assert rows["description"] == "-"
    assert rows["openstack-installed"] == "false"
    assert {k: v for k, v in rows.items() if k.endswith("_sync_status")} == {
        f"{e}_sync_status": "in-sync" for e in ENDPOINT_TYPES
    }


# subcloud add


def test_it_registers_a_subcloud_with_every_option(fleet, api):
    before = StateChange.objects.count()

    out, _ = run(
        "subcloud", "add", "--json", "--name", "delta", "--description", "Ottawa site", "--location", "YOW",
        "--group", "labs", "--region-name", "RegionDelta", "--software-version", "24.09",
        "--audit-url", "http://127.0.0.1:9/health", "--management-subnet", "192.168.101.0/24",
        "--management-start-ip", "192.168.101.2", "--management-end-ip", "192.168.101.50",
        "--management-gateway-ip", "192.168.101.1", "--systemcontroller-gateway-ip", "192.168.204.101",
    )

    response = api.get("/v1.0/subclouds/delta")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    delta = Subcloud.objects.get(name="delta")
    assert (delta.group_id, delta.region_name, delta.audit_url) == (fleet["labs"].pk, "RegionDelta", "http://127.0.0.1:9/health")
    assert (delta.management_state, delta.availability_status, delta.deploy_status) == ("unmanaged", "offline", "complete")
    assert delta.management_subnet == "192.168.101.0/24"
    assert delta.systemcontroller_gateway_ip == "192.168.204.101"
    assert dict(EndpointStatus.objects.filter(subcloud=delta).values_list("endpoint_type", "sync_status")) == dict.fromkeys(
        ENDPOINT_TYPES, "unknown"
    )
    assert not Fault.objects.filter(subcloud=delta).exists()
    assert StateChange.objects.count() == before + 1
    assert StateChange.objects.latest("id").reason == "registered"


def test_it_registers_with_defaults_and_prints_the_subcloud(db):
    out, _ = run("subcloud", "add", "--name", "edge1")

    edge1 = Subcloud.objects.get(name="edge1")
    assert edge1.group_id == DEFAULT_GROUP_ID
    assert len(edge1.region_name) == 32
    rows = rows_of(out)
    assert (rows["id"], rows["name"], rows["availability-status"]) == (str(edge1.pk), "edge1", "offline")


@pytest.mark.parametrize(
    ("options", "body"),
    [
        ([], {}),
        (["--name", "alpha"], {"name": "alpha"}),
        (["--name", "x1", "--management-subnet", "not-a-subnet"], {"name": "x1", "management-subnet": "not-a-subnet"}),
        (["--name", "x1", "--group", "nosuchgroup"], {"name": "x1", "group_id": "nosuchgroup"}),
        (["--name", "x1", "--audit-url", "ftp:/bad"], {"name": "x1", "audit-url": "ftp:/bad"}),
        (["--name", "1234"], {"name": "1234"}),
    ],
)
def test_it_refuses_to_register_with_the_apis_message(fleet, api, options, body):
    before = snapshot()

    message = refused("subcloud", "add", *options)

    assert snapshot() == before
    response = api.post("/v1.0/subclouds", body, format="json")
    assert response.status_code in (400, 409)
    assert message == response.json()["error_message"]
    assert snapshot() == before


# subcloud manage / unmanage


def test_it_manages_an_online_subcloud(fleet, api):
    out, _ = run("subcloud", "manage", "beta", "--json")

    response = api.get("/v1.0/subclouds/beta")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    assert Subcloud.objects.get(name="beta").management_state == "managed"
    effects = set(Outbox.objects.filter(subcloud=fleet["beta"]).values_list("kind", flat=True))
    assert {OutboxKind.DCORCH, OutboxKind.AUDIT_SUBCLOUD} <= effects


def test_it_unmanages_and_keeps_only_dc_cert(fleet):
    out, _ = run("subcloud", "unmanage", "alpha")

    alpha = Subcloud.objects.get(name="alpha")
    assert alpha.management_state == "unmanaged"
    statuses = dict(EndpointStatus.objects.filter(subcloud=alpha).values_list("endpoint_type", "sync_status"))
    assert statuses == {**dict.fromkeys(ENDPOINT_TYPES, "unknown"), "dc-cert": "in-sync"}
    assert rows_of(out)["management-state"] == "unmanaged"


def test_it_force_manages_an_offline_subcloud(fleet):
    run("subcloud", "manage", "gamma", "--force")

    assert Subcloud.objects.get(name="gamma").management_state == "managed"


@pytest.mark.parametrize(
    ("command", "body"),
    [
        (["manage", "gamma"], {"management-state": "managed"}),
        (["manage", "alpha"], {"management-state": "managed"}),
        (["unmanage", "beta"], {"management-state": "unmanaged"}),
    ],
    ids=["offline", "already-managed", "already-unmanaged"],
)
def test_it_refuses_a_management_change_with_the_apis_message(fleet, api, command, body):
    before = snapshot()

    message = refused("subcloud", *command)

    assert snapshot() == before
    response = api.patch(f"/v1.0/subclouds/{command[1]}", body, format="json")
    assert response.status_code == 400
    assert message == response.json()["error_message"]
    assert snapshot() == before


# subcloud delete


def test_it_deletes_an_unmanaged_subcloud(fleet):
    gamma = fleet["gamma"]

    out, _ = run("subcloud", "delete", "gamma")

    assert out == f"Subcloud gamma (id {gamma.pk}) deleted\n"
    assert not Subcloud.objects.filter(pk=gamma.pk).exists()
    assert not EndpointStatus.objects.filter(subcloud_id=gamma.pk).exists()
    assert not Fault.objects.filter(subcloud_name="gamma", cleared_at__isnull=True).exists()
    assert StateChange.objects.latest("id").reason == "deleted"


def test_it_deletes_with_the_apis_json(fleet, api):
    out, _ = run("subcloud", "delete", "beta", "--json")

    assert not Subcloud.objects.filter(name="beta").exists()
    response = api.delete("/v1.0/subclouds/gamma")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    assert not Subcloud.objects.filter(name="gamma").exists()


def test_it_refuses_to_delete_a_managed_subcloud(fleet, api):
    before = snapshot()

    message = refused("subcloud", "delete", "alpha")

    assert snapshot() == before
    response = api.delete("/v1.0/subclouds/alpha")
    assert response.status_code == 400
    assert message == response.json()["error_message"]
    assert snapshot() == before


@pytest.mark.parametrize("action", ["show", "manage", "unmanage", "delete"])
def test_it_refuses_an_unknown_subcloud_with_the_apis_message(fleet, api, action):
    before = snapshot()

    message = refused("subcloud", action, "nosuch")

    assert snapshot() == before
    response = api.get("/v1.0/subclouds/nosuch")
    assert response.status_code == 404
    assert message == response.json()["error_message"] == "Subcloud nosuch not found"


# subcloud_group


def test_it_lists_groups_as_the_api_does(fleet, api):
    out, _ = run("subcloud_group", "list", "--json")
    table, _ = run("subcloud_group", "list")

    response = api.get("/v1.0/subcloud-groups")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "DESCRIPTION"]
    assert [line.split()[:2] for line in lines[1:]] == [[str(DEFAULT_GROUP_ID), "Default"], [str(fleet["labs"].pk), "labs"]]


def test_it_creates_a_group(db, api):
    out, _ = run("subcloud_group", "add", "--json", "--name", "east", "--description", "East sites",
                 "--update-apply-type", "serial", "--max-parallel-subclouds", "7")

    group = SubcloudGroup.objects.get(name="east")
    assert (group.description, group.update_apply_type, group.max_parallel_subclouds) == ("East sites", "serial", 7)
    response = api.get(f"/v1.0/subcloud-groups/{group.pk}")
    assert response.status_code == 200
    assert out == response.content.decode() + "\n"
    table, _ = run("subcloud_group", "add", "--name", "west")
    rows = rows_of(table)
    assert (rows["name"], rows["description"], rows["max_parallel_subclouds"], rows["updated-at"]) == ("west", "", "2", "-")


@pytest.mark.parametrize(
    ("options", "body"),
    [
        (["--name", "labs"], {"name": "labs"}),
        (["--name", "x", "--update-apply-type", "sideways"], {"name": "x", "update_apply_type": "sideways"}),
        (["--name", "x", "--max-parallel-subclouds", "0"], {"name": "x", "max_parallel_subclouds": "0"}),
        ([], {}),
    ],
)
def test_it_refuses_a_bad_group_with_the_apis_message(fleet, api, options, body):
    before = snapshot()

    message = refused("subcloud_group", "add", *options)

    assert snapshot() == before
    response = api.post("/v1.0/subcloud-groups", body, format="json")
    assert response.status_code in (400, 409)
    assert message == response.json()["error_message"]


def test_it_deletes_a_group_and_moves_its_subclouds_to_default(fleet, api):
    out, _ = run("subcloud_group", "delete", "labs")

    assert out == f"Subcloud group labs (id {fleet['labs'].pk}) deleted; its subclouds moved to Default\n"
    services.create_group({"name": "west"})
    services.create_group({"name": "east"})
    json_out, _ = run("subcloud_group", "delete", "west", "--json")
    response = api.delete("/v1.0/subcloud-groups/east")
    assert response.status_code == 200
    assert json_out == response.content.decode() + "\n"
    assert list(SubcloudGroup.objects.values_list("name", flat=True)) == ["Default"]
    assert not SubcloudGroup.objects.filter(name="labs").exists()
    assert set(Subcloud.objects.values_list("name", "group_id")) == {
        ("alpha", DEFAULT_GROUP_ID), ("beta", DEFAULT_GROUP_ID), ("gamma", DEFAULT_GROUP_ID)
    }


@pytest.mark.parametrize("ref", ["Default", str(DEFAULT_GROUP_ID), "nosuch"])
def test_it_refuses_to_delete_default_or_an_unknown_group(fleet, api, ref):
    before = snapshot()

    message = refused("subcloud_group", "delete", ref)

    assert snapshot() == before
    response = api.delete(f"/v1.0/subcloud-groups/{ref}")
    assert response.status_code == (404 if ref == "nosuch" else 400)
    assert message == response.json()["error_message"]
    assert snapshot() == before


# state_stats


@pytest.fixture
def heartbeats(db):
    now = timezone.now()
    for name, age in (("state-0", 1), ("state-1", 3600)):
        WorkerHeartbeat.objects.create(
            name=name, hostname="ctl-0", pid=1000 + age, started_at=now - timedelta(hours=2),
            beat_at=now - timedelta(seconds=age), applied=5, noops=2, failed=0,
        )


def test_it_summarises_the_state_service(fleet, heartbeats):
    intake.accept(UpdateKind.AVAILABILITY, [
        (fleet["gamma"].pk, {"availability_status": "online", "update_state_only": False, "audit_fail_count": 0})
    ])

    out, _ = run("state_stats")

    counters = rows_of(out.split("\n\n")[0])
    assert counters["pending"].startswith("1 (oldest ")
    assert counters["applied"] == str(StateUpdate.objects.filter(outcome="applied").count()) != "0"
    assert counters["no-ops"] == str(StateUpdate.objects.filter(outcome="noop").count())
    assert counters["failed"] == "0"
    assert counters["accepted (last sequence)"] == str(intake.current_sequence())
    workers = out.split("\n\n")[1].splitlines()
    assert workers[0].split()[:2] == ["WORKER", "HOST"]
    assert [(w.split()[0], w.split()[4]) for w in workers[1:]] == [("state-0", "yes"), ("state-1", "NO")]


def test_it_prints_the_stats_json_of_the_api(fleet, heartbeats, api):
    out, _ = run("state_stats", "--json")

    response = api.get("/v1.0/state/stats")
    assert response.status_code == 200
    ours, theirs = json.loads(out), response.json()
    for worker in ours["workers"] + theirs["workers"]:
        assert worker.pop("heartbeat_age_seconds") >= 0
    assert ours == theirs
    assert [(w["name"], w["alive"]) for w in ours["workers"]] == [("state-0", True), ("state-1", False)]


def test_it_says_when_no_worker_has_reported(db):
    out, _ = run("state_stats")

    assert out.endswith("no state worker has sent a heartbeat\n")


# the real entry point


@pytest.mark.django_db(transaction=True)
def test_it_runs_as_manage_py_against_the_database(subcloud_factory, client_as):
    subcloud_factory("edge-a", location="YOW")
    subcloud_factory("edge-b")
    env = {**os.environ, "DCPORTAL_DATABASE_NAME": connection.settings_dict["NAME"]}

    procs = [  # side by side: each start costs a Python + Django start-up
        subprocess.Popen([sys.executable, "manage.py", "subcloud", *argv], cwd=ROOT, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for argv in (["list", "--json"], ["delete", "nosuch"])
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    listed, deleted = (subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs))

    response = client_as("reader").get("/v1.0/subclouds")
    assert response.status_code == 200
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout == response.content.decode() + "\n"
    assert [s["name"] for s in json.loads(listed.stdout)["subclouds"]] == ["edge-a", "edge-b"]
    assert deleted.returncode == 1
    assert deleted.stdout == ""
    assert deleted.stderr.strip() == "CommandError: Subcloud nosuch not found"
    assert Subcloud.objects.count() == 2
