"""The subcloud simulator (`simulate_subclouds`) and its control command (`simulate_control`), as real processes."""

import asyncio
import json
import random
import time

import httpx
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from dcportal.processes import Simulator, environment
from simulator.fleet import OFFLINE, ONLINE, Fleet, audit_url
from subclouds.models import Subcloud, SubcloudGroup
from tests.conftest import simulator_fixtures, wait_until

simulator, sim = simulator_fixtures(6, "sim")


def probe(sim, name):
    return httpx.get(audit_url(sim.url, name), timeout=2)


def control(sim, *args):
    out = []

    class Sink:
        def write(self, text):
            out.append(text)

        def flush(self):
            pass

    call_command("simulate_control", *args, "--url", sim.url, stdout=Sink())
    return json.loads("".join(out))


def test_it_answers_each_subclouds_probe_with_its_endpoint_statuses(sim):
    response = probe(sim, "sim3")
    assert response.status_code == 200
    assert response.json() == {"endpoints": dict.fromkeys(
        ["platform", "identity", "dc-cert", "firmware", "kubernetes", "kube-rootca", "software"], "in-sync")}
    assert probe(sim, "nope").status_code == 404
    assert sim.subcloud("sim3")["probes"] >= 1


def test_it_takes_subclouds_offline_and_back_and_drifts_endpoints_through_the_command(sim):
    assert control(sim, "offline", "--subcloud", "sim1", "--subcloud", "sim2") == {"changed": 2}
    assert [probe(sim, n).status_code for n in ("sim1", "sim2", "sim3")] == [503, 503, 200]
    assert control(sim, "drift", "--subcloud", "sim3", "--endpoint", "software") == {"changed": 1}
    assert probe(sim, "sim3").json()["endpoints"]["software"] == "out-of-sync"
    control(sim, "online", "--all")
    control(sim, "sync", "--subcloud", "sim3")
    assert [probe(sim, n).status_code for n in ("sim1", "sim2")] == [200, 200]
    assert set(probe(sim, "sim3").json()["endpoints"].values()) == {"in-sync"}
    summary = control(sim, "status")
    assert (summary["online"], summary["offline"], summary["out_of_sync"]) == (6, 0, 0)


@pytest.mark.django_db
def test_it_controls_a_whole_dcportal_group(sim, subcloud_factory):
    group = SubcloudGroup.objects.create(name="edge-north")
    for name in ("sim4", "sim5"):
        subcloud_factory(name, group_id=group)
    assert control(sim, "offline", "--group", "edge-north") == {"changed": 2}
    assert [probe(sim, n).status_code for n in ("sim4", "sim5", "sim6")] == [503, 503, 200]
    with pytest.raises(CommandError, match="no subclouds"):
        control(sim, "offline", "--group", "Default")


def test_it_flaps_a_subcloud(sim):
    sim.control(action="flap", subclouds=["sim6"], period=0.3)
    seen = set()
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(probe(sim, "sim6").status_code)
        time.sleep(0.05)
    assert seen == {200, 503}
    assert sim.summary()["flapping"] == ["sim6"]
    sim.control(action="online", subclouds=["sim6"])
    assert sim.summary()["flapping"] == []
    assert probe(sim, "sim6").status_code == 200


def test_it_runs_a_dead_office_and_brings_everything_back(sim):
    assert sim.control(action="dead-office", seconds=2) == {"changed": 6}
    assert {probe(sim, f"sim{i}").status_code for i in range(1, 7)} == {503}
    wait_until(lambda: sim.summary()["online"] == 6, timeout=10, message="back online")
    assert {probe(sim, f"sim{i}").status_code for i in range(1, 7)} == {200}


def test_it_makes_a_subcloud_unreachable_so_the_probe_times_out(sim):
    sim.control(action="unreachable", subclouds=["sim2"])
    with pytest.raises(httpx.TimeoutException):
        httpx.get(audit_url(sim.url, "sim2"), timeout=0.3)


def test_it_counts_what_the_fake_dcorch_receives_and_can_refuse_it(sim):
    url = sim.url + "/receivers/dcorch"
    assert httpx.post(url, json={"subcloud": "sim1", "availability_status": "online"}).status_code == 200
    sim.control(action="receiver-down", receiver="dcorch")
    assert httpx.post(url, json={"subcloud": "sim1", "availability_status": "offline"}).status_code == 503
    received = control(sim, "received", "--receiver", "dcorch")
    assert (received["count"], received["refused"]) == (1, 1)
    assert received["received"][0]["body"] == {"subcloud": "sim1", "availability_status": "online"}
    assert sim.received("dcorch", subcloud="sim2")["count"] == 0


def test_it_refuses_a_bad_control_request(sim):
    response = httpx.post(sim.url + "/control", json={"action": "explode", "all": True})
    assert response.status_code == 400
    assert "unknown action" in response.json()["error"]
    assert httpx.post(sim.url + "/control", json={"action": "offline", "subclouds": ["ghost"]}).status_code == 400
    with pytest.raises(CommandError, match="say which subclouds"):
        control(sim, "offline")


@pytest.mark.django_db(transaction=True)
def test_it_registers_its_subclouds_with_their_audit_urls(tmp_path):
    Subcloud.objects.create(name="reg1", audit_url="http://old.example/audit")
    sim = Simulator(3, tmp_path, environment(connection.settings_dict["NAME"], "unused"), prefix="reg",
                    register=True).start()
    try:
        urls = dict(Subcloud.objects.filter(name__startswith="reg").values_list("name", "audit_url"))
        assert urls == {f"reg{i}": audit_url(sim.url, f"reg{i}") for i in (1, 2, 3)}
        assert Subcloud.objects.get(name="reg2").endpoints.count() == 7
        assert "registered 2 subclouds, re-pointed 1" in sim.log()
    finally:
        sim.stop()


async def test_its_weather_now_and_then_takes_a_region_down_together_and_brings_it_back():
    """The demo's chaos makes incidents by itself: a regional outage is at least the incident threshold."""
    fleet = Fleet([f"sc{i}" for i in range(200)])
    hit = fleet.regional_outage(random.Random(1), seconds=0.2)
    assert len(hit) == len(set(hit)) >= settings.INCIDENT_MIN_SUBCLOUDS
    assert {fleet.subclouds[n].mode for n in hit} == {OFFLINE}
    await asyncio.sleep(0.5)
    assert {sc.mode for sc in fleet.subclouds.values()} == {ONLINE}
