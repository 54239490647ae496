"""The Keystone role map (accounts/keystone.py) and the checks on the external-Keystone settings."""

import pytest
from django.conf import settings
from django.core import checks

from accounts.keystone import mapped_role, parse_role_map

DEFAULT = parse_role_map(settings.KEYSTONE_ROLE_MAP)


@pytest.mark.parametrize(("project", "roles", "expected"), [
    ("services", ["admin"], "service"),  # dcorch, the certificate monitor, the audit
    ("services", ["service"], "service"),
    ("admin", ["admin"], "operator"),
    ("admin", ["operator"], "operator"),
    ("admin", ["configurator"], "operator"),
    ("admin", ["reader"], "reader"),
    ("admin", ["member", "reader"], "reader"),
    ("admin", ["Reader", "Operator"], "operator"),  # names compare without case; the strongest wins
    ("services", ["reader"], "reader"),
    ("admin", ["heat_stack_owner"], None),
    ("admin", [], None),
])
def test_it_maps_starlingx_roles_by_default(project, roles, expected):
    assert mapped_role(project, roles, DEFAULT) == expected


def test_it_lets_a_project_entry_win_over_a_plain_one_and_takes_superuser():
    role_map = parse_role_map("admin=reader, admin:admin=superuser")
    assert mapped_role("admin", ["admin"], role_map) == "superuser"
    assert mapped_role("services", ["admin"], role_map) == "reader"


@pytest.mark.parametrize("text", ["admin", "admin=root", "=reader", "admin=", "admin=reader,member"])
def test_it_refuses_a_bad_role_map(text):
    with pytest.raises(ValueError, match="bad role map entry"):
        parse_role_map(text)


def run_checks():
    return {e.id for e in checks.run_checks() if e.id and e.id.startswith("accounts.")}


def test_it_reports_bad_keystone_settings(settings):
    assert run_checks() == set()
    settings.KEYSTONE_ROLE_MAP = "admin=root"
    settings.KEYSTONE_URL = "ftp://controller"
    settings.KEYSTONE_PASSWORD = ""
    settings.KEYSTONE_PROJECTS = []
    assert run_checks() == {"accounts.E001", "accounts.E002", "accounts.E003", "accounts.E004"}
