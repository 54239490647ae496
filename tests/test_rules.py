"""The rules of domain.md, one table per section, on in-memory states (no database).

Persistence of the same outcomes (alarms, outbox, change log) is tested in
test_state_apply.py; these tests pin the decisions themselves.
"""

import pytest

from state import rules
from state.rules import ALARM_OFFLINE, ALARM_OUT_OF_SYNC, SubcloudState
from subclouds.choices import ENDPOINT_TYPES, overall_sync_status
from subclouds.errors import Refused as RuleViolation

ALL_UNKNOWN = dict.fromkeys(ENDPOINT_TYPES, "unknown")


def make(avail="online", mgmt="managed", deploy="complete", endpoints=None, alarms=(), fail=0, identity_done=False):
    return SubcloudState(
        id=1,
        name="sc1",
        region_name="r" * 32,
        management_state=mgmt,
        availability_status=avail,
        deploy_status=deploy,
        audit_fail_count=fail,
        first_identity_sync_complete=identity_done,
        endpoints={**ALL_UNKNOWN, **(endpoints or {})},
        alarms=set(alarms),
    )


def oos_key(endpoint):
    return (ALARM_OUT_OF_SYNC, f"subcloud=sc1.resource={endpoint}")


OFFLINE_KEY = (ALARM_OFFLINE, "subcloud=sc1")


def effect_kinds(state):
    return sorted(kind for kind, _ in state.effects)


# -- Rule 1: whether to apply at all ------------------------------------------

RULE_1 = [
    # (availability, management, deploy, endpoint, new status, applied?)
    ("offline", "unmanaged", "complete", "platform", "in-sync", False),
    ("offline", "unmanaged", "complete", "platform", "out-of-sync", True),
    ("offline", "unmanaged", "complete", "platform", "unknown", False),  # equal to stored: rule 2
    ("online", "unmanaged", "complete", "platform", "in-sync", False),
    ("online", "unmanaged", "complete", "dc-cert", "in-sync", True),  # dc-cert audited while unmanaged
    ("offline", "unmanaged", "complete", "dc-cert", "in-sync", False),
    ("online", "managed", "complete", "platform", "in-sync", True),
    ("online", "managed", "complete", "platform", "out-of-sync", True),
    ("offline", "managed", "complete", "identity", "in-sync", False),
    ("online", "managed", "secondary", "platform", "in-sync", False),  # secondary: only unknown
    ("online", "managed", "secondary", "platform", "out-of-sync", False),
]


@pytest.mark.parametrize("avail,mgmt,deploy,endpoint,status,applied", RULE_1)
def test_it_applies_an_endpoint_update_only_when_rule_1_allows(avail, mgmt, deploy, endpoint, status, applied):
    state = make(avail, mgmt, deploy)
    rules.update_endpoint_status(state, endpoint, status)
    assert (state.endpoints[endpoint] == status) is (applied or status == "unknown")
    assert (oos_key(endpoint) in state.alarms) is (applied and status == "out-of-sync")


def test_it_applies_unknown_to_a_secondary_subcloud():
    state = make(deploy="secondary", endpoints={"platform": "in-sync"})
    assert rules.apply_update(state, "endpoint", {"endpoint_type": "platform", "sync_status": "unknown"})
    assert state.endpoints["platform"] == "unknown"


# -- Rule 2: unchanged single-endpoint update is a no-op ------------------------


def test_it_changes_nothing_for_a_single_endpoint_update_equal_to_the_stored_status():
    # The alarm is deliberately missing: a no-op update must not even make it consistent.
    state = make(endpoints={"platform": "out-of-sync"})
    changed = rules.apply_update(state, "endpoint", {"endpoint_type": "platform", "sync_status": "out-of-sync"})
    assert not changed
    assert state.alarms == set() and state.effects == {}


# -- Rule 3: unknown endpoint ---------------------------------------------------


def test_it_refuses_an_endpoint_the_subcloud_does_not_have():
    state = make()
    del state.endpoints["firmware"]
    with pytest.raises(RuleViolation) as err:
        rules.update_endpoint_status(state, "firmware", "in-sync")
    assert err.value.field == "endpoint_type"
    assert "firmware" not in state.endpoints


# -- Rule 4: identity leaving unknown ---------------------------------------------

RULE_4 = [
    # (old identity status, new status, first sync marked?, audit triggered?)
    ("unknown", "in-sync", True, True),
    ("unknown", "out-of-sync", True, True),
    ("in-sync", "out-of-sync", False, False),
    ("out-of-sync", "unknown", False, False),
]


@pytest.mark.parametrize("old,new,marked,audited", RULE_4)
def test_it_marks_first_identity_sync_and_audits_when_identity_leaves_unknown(old, new, marked, audited):
    state = make(endpoints={"identity": old})
    rules.update_endpoint_status(state, "identity", new)
    assert state.first_identity_sync_complete is marked
    assert (("audit-subcloud", 1) in state.effects) is audited


def test_it_marks_first_identity_sync_from_a_bulk_update_too():
    state = make()
    rules.bulk_update(state, None, {"identity": "in-sync"})
    assert state.first_identity_sync_complete and ("audit-subcloud", 1) in state.effects


# -- Rule 5: alarms follow the new status ----------------------------------------

RULE_5 = [
    # (stored, new, alarmable, alarm active before, alarm active after)
    ("in-sync", "out-of-sync", True, False, True),
    ("in-sync", "out-of-sync", False, False, False),
    ("out-of-sync", "in-sync", True, True, False),
    ("out-of-sync", "unknown", True, True, False),
    ("in-sync", "out-of-sync", False, True, False),  # non-alarmable out-of-sync clears
]


@pytest.mark.parametrize("stored,new,alarmable,before,after", RULE_5)
def test_it_raises_or_clears_280_002_with_the_new_status(stored, new, alarmable, before, after):
    state = make(endpoints={"platform": stored}, alarms=[oos_key("platform")] if before else [])
    rules.update_endpoint_status(state, "platform", new, alarmable=alarmable)
    assert (oos_key("platform") in state.alarms) is after
    if after and not before:
        alarm = state.raised[oos_key("platform")]
        assert alarm.severity == "major" and not alarm.service_affecting


def test_it_sets_every_endpoint_but_the_ignored_ones_when_no_endpoint_is_named():
    state = make(endpoints=dict.fromkeys(ENDPOINT_TYPES, "in-sync"))
    rules.update_endpoint_status(state, None, "out-of-sync", ignore_endpoints=["dc-cert", "identity"])
    assert state.endpoints["dc-cert"] == "in-sync" and state.endpoints["identity"] == "in-sync"
    assert {e for e, s in state.endpoints.items() if s == "out-of-sync"} == set(ENDPOINT_TYPES) - {"dc-cert", "identity"}
    assert len(state.alarms) == 5


# -- Rule 6: fleet audits -----------------------------------------------------------


@pytest.mark.parametrize("endpoint,fleet", [("software", True), ("firmware", True), ("kubernetes", True), ("platform", False)])
def test_it_triggers_a_fleet_audit_when_software_firmware_or_kubernetes_becomes_unknown(endpoint, fleet):
    state = make(endpoints={endpoint: "in-sync"})
    rules.update_endpoint_status(state, endpoint, "unknown")
    assert (("audit-all", endpoint) in state.effects) is fleet


def test_it_triggers_no_fleet_audit_from_a_bulk_update():
    state = make(endpoints={"software": "in-sync"})
    rules.bulk_update(state, None, {"software": "unknown"})
    assert state.endpoints["software"] == "unknown"
    assert not any(kind == "audit-all" for kind, _ in state.effects)


# -- Availability ---------------------------------------------------------------------


def test_it_only_repairs_the_alarm_and_resends_to_dcorch_for_update_state_only():
    state = make(avail="offline", fail=3)
    rules.update_availability(state, "offline", update_state_only=True, audit_fail_count=7)
    assert state.alarms == {OFFLINE_KEY}
    assert state.audit_fail_count == 3 and state.availability_status == "offline"
    assert effect_kinds(state) == ["dcorch"]
    rules.update_availability(state, "online", update_state_only=True)
    assert state.alarms == set() and state.availability_status == "offline"


def test_it_raises_no_offline_alarm_for_a_secondary_subcloud_on_update_state_only():
    state = make(avail="offline", deploy="secondary")
    rules.update_availability(state, "offline", update_state_only=True)
    assert state.alarms == set()


def test_it_stores_only_the_fail_count_when_availability_is_absent():
    state = make(avail="offline", fail=1)
    rules.update_availability(state, None, audit_fail_count=2)
    assert state.audit_fail_count == 2 and state.effects == {} and state.alarms == set()


def test_it_caps_the_fail_count():
    state = make(avail="offline")
    rules.update_availability(state, None, audit_fail_count=123456)
    assert state.audit_fail_count == rules.AUDIT_FAIL_COUNT_MAX


def test_it_changes_nothing_when_availability_equals_the_stored_one():
    state = make(avail="online", fail=0)
    assert not rules.apply_update(state, "availability", {"availability_status": "online", "audit_fail_count": 5})
    assert state.audit_fail_count == 0


GOING_OFFLINE = [
    # (deploy status, offline alarm raised?)
    ("complete", True),
    ("secondary", False),
]


@pytest.mark.parametrize("deploy,alarmed", GOING_OFFLINE)
def test_it_raises_280_001_and_sets_every_endpoint_unknown_going_offline(deploy, alarmed):
    state = make(avail="online", deploy=deploy, endpoints={"platform": "out-of-sync", "identity": "in-sync"},
                 alarms=[oos_key("platform")])
    rules.update_availability(state, "offline", audit_fail_count=2)
    assert state.availability_status == "offline" and state.audit_fail_count == 2
    assert set(state.endpoints.values()) == {"unknown"}
    assert oos_key("platform") not in state.alarms
    assert (OFFLINE_KEY in state.alarms) is alarmed
    assert "dcorch" in effect_kinds(state)
    if alarmed:
        alarm = state.raised[OFFLINE_KEY]
        assert alarm.severity == "critical" and alarm.service_affecting


def test_it_clears_280_001_notifies_audits_and_tells_dcorch_going_online():
    state = make(avail="offline", alarms=[OFFLINE_KEY], fail=3)
    rules.update_availability(state, "online", audit_fail_count=0)
    assert state.availability_status == "online" and state.audit_fail_count == 0
    assert state.alarms == set()
    assert effect_kinds(state) == ["audit-subcloud", "certmon", "dcorch"]


# -- Bulk -------------------------------------------------------------------------------


def test_it_drops_unchanged_endpoints_before_applying_a_bulk_update():
    state = make(endpoints={"platform": "out-of-sync"})  # alarm missing on purpose
    rules.bulk_update(state, None, {"platform": "out-of-sync", "identity": "in-sync"})
    assert oos_key("platform") not in state.alarms  # dropped: no alarm call for it
    assert state.endpoints["identity"] == "in-sync"


def test_it_applies_availability_before_the_endpoints_of_a_bulk_update():
    # Coming online with in-sync endpoints: rule 1 sees the new availability.
    state = make(avail="offline", mgmt="managed")
    rules.bulk_update(state, {"availability_status": "online"}, dict.fromkeys(ENDPOINT_TYPES, "in-sync"))
    assert state.availability_status == "online" and set(state.endpoints.values()) == {"in-sync"}
    # Going offline with in-sync endpoints: rule 1 refuses them, out-of-sync still applies.
    rules.bulk_update(state, {"availability_status": "offline"}, {"platform": "in-sync", "software": "out-of-sync"})
    assert state.endpoints["platform"] == "unknown" and state.endpoints["software"] == "out-of-sync"
    assert oos_key("software") in state.alarms


def test_it_filters_bulk_endpoints_by_rule_1_for_unmanaged_subclouds():
    state = make(avail="online", mgmt="unmanaged")
    rules.bulk_update(state, None, {"platform": "in-sync", "dc-cert": "in-sync"})
    assert state.endpoints["platform"] == "unknown" and state.endpoints["dc-cert"] == "in-sync"


# -- Management ---------------------------------------------------------------------------

MANAGE = [
    # (availability, management, deploy, force, error fragment or None)
    ("online", "unmanaged", "complete", False, None),
    ("online", "managed", "complete", False, "already managed"),
    ("online", "managed", "complete", True, "already managed"),
    ("offline", "unmanaged", "complete", False, "only when it is online"),
    ("online", "unmanaged", "secondary", False, "deploy status is complete"),
    ("offline", "unmanaged", "secondary", True, None),
]


@pytest.mark.parametrize("avail,mgmt,deploy,force,error", MANAGE)
def test_it_manages_by_the_rules(avail, mgmt, deploy, force, error):
    state = make(avail, mgmt, deploy)
    if error:
        with pytest.raises(RuleViolation, match=error):
            rules.manage(state, force=force)
        assert state.management_state == mgmt and state.effects == {}
    else:
        rules.manage(state, force=force)
        assert state.management_state == "managed"
        assert effect_kinds(state) == ["audit-subcloud", "dcorch"]


UNMANAGE = [
    # (deploy status, dc-cert after)
    ("complete", "in-sync"),
    ("secondary", "unknown"),
    ("rehome-pending", "unknown"),
]


@pytest.mark.parametrize("deploy,dc_cert", UNMANAGE)
def test_it_unmanages_and_sets_endpoints_unknown(deploy, dc_cert):
    state = make(mgmt="managed", deploy=deploy, endpoints=dict.fromkeys(ENDPOINT_TYPES, "in-sync"))
    rules.unmanage(state)
    assert state.management_state == "unmanaged"
    assert state.endpoints["dc-cert"] == dc_cert
    assert {s for e, s in state.endpoints.items() if e != "dc-cert"} == {"unknown"}
    assert "dcorch" in effect_kinds(state)


def test_it_refuses_to_unmanage_an_unmanaged_subcloud():
    with pytest.raises(RuleViolation, match="already unmanaged"):
        rules.unmanage(make(mgmt="unmanaged"))


def test_it_refuses_to_delete_a_managed_subcloud():
    with pytest.raises(RuleViolation, match="while it is managed"):
        rules.check_delete(make(mgmt="managed"))
    rules.check_delete(make(mgmt="unmanaged"))


# -- Listing -----------------------------------------------------------------------------

OVERALL = [
    (["unknown"] * 7, "unknown"),
    (["in-sync"] * 7, "in-sync"),
    (["in-sync"] * 6 + ["unknown"], "out-of-sync"),
    (["in-sync"] * 6 + ["out-of-sync"], "out-of-sync"),
    ([], "unknown"),
]


@pytest.mark.parametrize("statuses,overall", OVERALL)
def test_it_computes_the_overall_sync_status(statuses, overall):
    assert overall_sync_status(statuses) == overall


def test_it_reports_a_noop_for_an_update_that_changes_nothing():
    state = make(avail="offline", mgmt="unmanaged")
    assert not rules.apply_update(state, "endpoint", {"endpoint_type": "platform", "sync_status": "in-sync"})
    assert rules.apply_update(state, "endpoint", {"endpoint_type": "platform", "sync_status": "out-of-sync"})
