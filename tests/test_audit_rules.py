"""The audit's decisions (audit/rules.py): pure functions, no database."""

import pytest

from audit import rules as audit_rules
from audit.rules import Probe
from state.rules import AUDIT_FAIL_COUNT_MAX, SubcloudState
from subclouds.choices import ENDPOINT_TYPES

IN_SYNC = dict.fromkeys(ENDPOINT_TYPES, "in-sync")


def state(availability="online", fails=0, managed=True, deploy="complete", endpoints=None):
    return SubcloudState(
        id=7, name="sc7", region_name="r7", management_state="managed" if managed else "unmanaged",
        availability_status=availability, deploy_status=deploy, audit_fail_count=fails,
        first_identity_sync_complete=True, endpoints=dict(endpoints or IN_SYNC),
    )


FAIL = Probe(False, error="HTTP 503")
OK = Probe(True, IN_SYNC)


def test_it_keeps_an_online_subcloud_online_after_one_failure_and_records_the_count():
    message = audit_rules.audit_message(state(), FAIL)
    assert message == {"availability": {"availability_status": None, "update_state_only": False, "audit_fail_count": 1},
                       "endpoints": {}}


def test_it_takes_a_subcloud_offline_at_the_second_consecutive_failure():
    message = audit_rules.audit_message(state(fails=1), FAIL)
    assert message["availability"] == {"availability_status": "offline", "update_state_only": False, "audit_fail_count": 2}


def test_it_brings_a_subcloud_back_online_after_one_success_with_its_endpoints():
    endpoints = dict(IN_SYNC, platform="out-of-sync")
    message = audit_rules.audit_message(state("offline", fails=12, endpoints=dict.fromkeys(ENDPOINT_TYPES, "unknown")),
                                        Probe(True, endpoints))
    assert message["availability"] == {"availability_status": "online", "update_state_only": False, "audit_fail_count": 0}
    assert message["endpoints"] == endpoints


def test_it_resets_the_fail_count_of_an_online_subcloud_that_answers_again():
    message = audit_rules.audit_message(state(fails=1), OK)
    assert message["availability"] == {"availability_status": None, "update_state_only": False, "audit_fail_count": 0}


def test_it_counts_failures_of_an_offline_subcloud_up_to_the_cap():
    assert audit_rules.audit_message(state("offline", fails=5), FAIL)["availability"]["audit_fail_count"] == 6
    assert audit_rules.audit_message(state("offline", fails=AUDIT_FAIL_COUNT_MAX - 1), FAIL)["availability"] == {
        "availability_status": None, "update_state_only": False, "audit_fail_count": AUDIT_FAIL_COUNT_MAX}
    assert audit_rules.audit_message(state("offline", fails=AUDIT_FAIL_COUNT_MAX), FAIL) is None


def test_it_sends_nothing_when_nothing_changed():
    assert audit_rules.audit_message(state(), OK) is None


def test_it_sends_only_the_endpoints_that_differ():
    message = audit_rules.audit_message(state(), Probe(True, dict(IN_SYNC, software="out-of-sync")))
    assert message == {"availability": None, "endpoints": {"software": "out-of-sync"}}


def test_it_does_not_resend_in_sync_endpoints_the_rules_would_not_apply():
    # Unmanaged: in-sync applies to dc-cert only (endpoint rule 1), so the rest would be re-sent forever.
    unknown = dict.fromkeys(ENDPOINT_TYPES, "unknown")
    assert audit_rules.audit_message(state(managed=False, endpoints=dict(unknown, **{"dc-cert": "in-sync"})), OK) is None
    assert audit_rules.audit_message(state(managed=False, endpoints=unknown), OK) == {
        "availability": None, "endpoints": IN_SYNC}


def test_it_sends_the_refresh_only_when_due_and_nothing_else_is_sent():
    assert audit_rules.audit_message(state("offline", fails=AUDIT_FAIL_COUNT_MAX), FAIL, refresh=True) == {
        "availability": {"availability_status": "offline", "update_state_only": True, "audit_fail_count": None},
        "endpoints": {}}
    assert audit_rules.audit_message(state(fails=1), FAIL, refresh=True)["availability"]["update_state_only"] is False


def test_it_spreads_refreshes_so_each_subcloud_is_due_once_per_period():
    period, interval = 3600.0, 20.0
    due = dict.fromkeys(range(1, 2001), 0)
    for cycle in range(int(period / interval)):
        since, now = 1e6 + cycle * interval, 1e6 + (cycle + 1) * interval
        for sid in due:
            due[sid] += audit_rules.refresh_due(sid, since, now, period)
    assert set(due.values()) == {1}
    per_cycle = [sum(audit_rules.refresh_due(sid, 1e6 + c * interval, 1e6 + (c + 1) * interval, period) for sid in due)
                 for c in range(10)]
    assert max(per_cycle) < 40  # ~11 expected per cycle for 2,000 subclouds: spread, not bunched


@pytest.mark.parametrize(("since", "now", "expected"), [(None, 100.0, False), (100.0, 100.0, False), (0.0, 3600.0, True)])
def test_it_decides_the_refresh_at_the_edges(since, now, expected):
    assert audit_rules.refresh_due(1, since, now, 3600.0) is expected


def test_it_reads_the_probe_answer_format():
    assert audit_rules.probe_from_answer(200, {"endpoints": {"platform": "in-sync", "bogus": "in-sync", "identity": "x"}}) == \
        Probe(True, {"platform": "in-sync"})
    assert audit_rules.probe_from_answer(503, None).ok is False
    assert audit_rules.probe_from_answer(200, ["not", "an", "object"]).ok is False


def test_it_does_not_probe_secondary_subclouds():
    assert audit_rules.should_probe(state(deploy="secondary")) is False
    assert audit_rules.should_probe(state()) is True


def test_it_decides_on_the_state_the_pending_updates_will_leave():
    pending = [("bulk", {"availability": {"availability_status": None, "update_state_only": False, "audit_fail_count": 1},
                         "endpoints": {}})]
    effective = audit_rules.with_pending(state(), pending)
    assert effective.audit_fail_count == 1
    assert audit_rules.audit_message(effective, FAIL)["availability"]["availability_status"] == "offline"
