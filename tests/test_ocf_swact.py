"""Swact: every process stopped through its OCF agent and started again, as a failover to the
standby controller would, while a client keeps posting state updates.

Reports the outage window (last 202 before the stop to first 202 after the start) and checks
that nothing accepted was lost: every 202's update is applied, each subcloud ends in its
highest-sequence state, and the audit worker and beat are alive again (fresh heartbeats).
"""

import threading
import time

import httpx
import pytest
from django.utils import timezone

from accounts.models import ApiToken
from state.models import StateUpdate, WorkerHeartbeat
from subclouds.models import Subcloud

from .conftest import make_user, wait_until
from .test_ocf_agents import agent, env_file, ocf_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Poster(threading.Thread):
    """Flips availability of the fleet, one update every 50 ms, recording each answer."""

    def __init__(self, url, token, names):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=5)
        self.names, self.stop, self.answers = names, threading.Event(), []

    def run(self):
        i = 0
        while not self.stop.is_set():
            name = self.names[i % len(self.names)]
            status = "online" if (i // len(self.names)) % 2 == 0 else "offline"
            try:
                r = self.client.post("/v1.0/state/availability", json={"subcloud": name, "availability_status": status})
                sequence = r.json().get("sequence") if r.status_code == 202 else None
                answer = (time.monotonic(), r.status_code, name, status, sequence)
            except httpx.HTTPError:
                answer = (time.monotonic(), None, name, status, None)
            self.answers.append(answer)
            i += 1
            time.sleep(0.05)


def test_it_survives_a_swact_through_the_agents_losing_nothing(agent, subcloud_factory):  # noqa: F811
    names = [subcloud_factory(f"swact{i}").name for i in range(20)]
    _, token = ApiToken.objects.issue(make_user("service"))
    agents = [agent("dcportal-api"), agent("dcportal-state", "sw-state0"), agent("dcportal-state", "sw-state1"),
              agent("dcportal-audit"), agent("dcportal-audit-beat")]
    for a in agents:
        assert a("start", timeout=60000).rc == 0, a.log()
    poster = Poster(f"http://127.0.0.1:{agents[0].params['port']}", token, names)
    poster.start()
    wait_until(lambda: sum(a[1] == 202 for a in poster.answers) >= 20, timeout=30, message="updates flowing")

    stopped_at = time.monotonic()
    for a in agents:  # the active controller goes away
        assert a("stop", timeout=60000).rc == 0, a.log()
    restart = timezone.now()
    for a in agents:  # the standby takes over
        assert a("start", timeout=60000).rc == 0, a.log()
    started_at = time.monotonic()
    wait_until(lambda: any(a[1] == 202 and a[0] > started_at for a in poster.answers), timeout=30, message="202s again")
    time.sleep(1)
    poster.stop.set()
    poster.join(10)

    answers = poster.answers
    accepted = [a for a in answers if a[1] == 202]
    times = sorted(a[0] for a in accepted)
    outage = max(later - earlier for earlier, later in zip(times, times[1:]))  # the longest time without a 202
    print(f"\nswact: agents stop+start took {started_at - stopped_at:.1f}s; "
          f"outage window (longest gap between 202s) {outage:.1f}s; "
          f"{len(accepted)} accepted, {len(answers) - len(accepted)} refused or unanswered")
    # While the API was down requests failed to connect or got 503; never a 500.
    assert not [a for a in answers if a[1] is not None and a[1] >= 500 and a[1] != 503]

    sequences = [a[4] for a in accepted]
    wait_until(lambda: not StateUpdate.objects.filter(id__in=sequences, applied_at__isnull=True).exists(),
               timeout=30, message="every accepted update applied")
    assert not StateUpdate.objects.filter(id__in=sequences, outcome="failed").exists()
    last = {}
    for _, _, name, status, _ in sorted(accepted, key=lambda a: a[4]):
        last[name] = status
    assert dict(Subcloud.objects.filter(name__in=last).values_list("name", "availability_status")) == last
    wait_until(lambda: WorkerHeartbeat.objects.filter(kind__in=["audit", "beat"], beat_at__gt=restart).count() >= 2,
               timeout=30, message="audit worker and beat beating again")
