"""Subcloud, region and group names (issue 10 item 3): one rule set (subclouds/names.py), one namespace.

A name that is another subcloud's region name (or the reverse) would let lookups and
state updates addressed by that region reach the wrong subcloud: 409, race-free. Names
that do not print safely or break a URL are 400 naming the field; rows stored before the
rules are reported by the `subclouds.W001` database check; the admin commands escape
what cannot be printed.
"""

import threading
from io import StringIO
from urllib.parse import quote

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection, connections, transaction
from django.utils.html import escape

from api.management.output import cell, table
from state import operations
from subclouds.errors import Conflict
from subclouds.models import EndpointStatus, Subcloud, SubcloudGroup

from .conftest import wait_until
from .test_pages_views import browser_as

JSON = "json"

# (id, name): every class of character or shape the rules refuse, each a 400 naming `name`.
REFUSED_NAMES = [
    ("control-escape", "sc\x1b[2Jx"),
    ("control-newline-inside", "sc\nx"),
    ("control-c1", "sc\x85x"),
    ("control-del", "sc\x7fx"),
    ("line-separator", "sc\u2028x"),
    ("bidi-override", "sc\u202egnp.exe"),
    ("bidi-isolate", "sc\u2067x"),
    ("bidi-mark", "sc\u200fx"),
    ("arabic-letter-mark", "sc\u061cx"),
    ("slash", "east/sc1"),
    ("leading-space", " sc1"),
    ("trailing-tab", "sc1\t"),
    ("leading-newline", "\nsc1"),
    ("digits-only", "12345"),
    ("too-long", "s" * 256),
    ("whitespace-only", "   "),
    *[(f"regex-char-{c}", f"sc{c}1") for c in ".*+?|()[]{}^$"],
]
RESERVED = ["SystemController", "systemcontroller", "RegionOne", "REGIONONE"]


@pytest.fixture
def operator(client_as):
    return client_as("operator")


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for _, n in REFUSED_NAMES] + RESERVED, ids=[i for i, _ in REFUSED_NAMES] + RESERVED)
def test_it_refuses_a_bad_subcloud_name_with_400_naming_name(operator, name):
    for fmt in ("json", "multipart"):
        r = operator.post("/v1.0/subclouds/", {"name": name}, format=fmt)
        assert r.status_code == 400, (fmt, r.content)
        assert r.json()["field"] == "name"
        assert r.json()["error_message"].startswith("name: subcloud name ")
    assert not Subcloud.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for _, n in REFUSED_NAMES], ids=[i for i, _ in REFUSED_NAMES])
def test_it_refuses_a_bad_group_name_on_create_and_rename(operator, name):
    r = operator.post("/v1.0/subcloud-groups/", {"name": name}, format=JSON)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == "name"
    SubcloudGroup.objects.create(name="east")
    r = operator.patch("/v1.0/subcloud-groups/east", {"name": name}, format=JSON)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == "name"
    assert sorted(SubcloudGroup.objects.values_list("name", flat=True)) == ["Default", "east"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["default", "DEFAULT", "dEfAuLt"])
def test_it_refuses_any_spelling_of_default_as_a_new_group_name_with_409(operator, name):
    r = operator.post("/v1.0/subcloud-groups/", {"name": name}, format=JSON)
    assert r.status_code == 409, r.content
    assert r.json()["field"] == "name"
    assert list(SubcloudGroup.objects.values_list("name", flat=True)) == ["Default"]


@pytest.mark.django_db
def test_it_still_lets_the_default_group_keep_its_name(operator):
    r = operator.patch("/v1.0/subcloud-groups/Default", {"name": "Default", "description": "d"}, format=JSON)
    assert r.status_code == 200, r.content
    assert SubcloudGroup.objects.get(pk=1).description == "d"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["east-1", "Ottawa Site 3", "sous-nuage_é", "子云-7", "a" * 255, "1a", "Default-like",
                                  "50% #2 & <b>'\"", "semi;colon,comma=eq@at~"])
def test_it_accepts_names_within_the_rules_and_they_have_a_detail_page(operator, name):
    r = operator.post("/v1.0/subclouds/", {"name": name}, format=JSON)
    assert r.status_code == 200, r.content
    assert Subcloud.objects.get().name == name
    path = quote(name, safe="")  # as the pages' links encode it (encodeURIComponent)
    assert operator.get(f"/v1.0/subclouds/{path}").json()["id"] == r.json()["id"]
    page = browser_as("reader").get(f"/portal/subclouds/{path}/")
    assert page.status_code == 200
    assert escape(name) in page.content.decode()
    r = operator.post("/v1.0/subcloud-groups/", {"name": name}, format=JSON)
    assert r.status_code == 200, r.content


@pytest.mark.django_db
@pytest.mark.parametrize("region", ["12345", "RegionOne", "systemcontroller", "bad region", "r\n", "r/1", "r" * 256])
def test_it_refuses_a_bad_region_name_with_400_naming_region_name(operator, region):
    r = operator.post("/v1.0/subclouds/", {"name": "sc1", "region_name": region}, format=JSON)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == "region_name"
    assert not Subcloud.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body, field, owner", [
    ({"name": "RegionX"}, "name", "has-region"),                          # name = an existing region name
    ({"name": "fresh", "region_name": "has-region"}, "region_name", "has-region"),  # region = an existing name
    ({"name": "has-region"}, "name", "has-region"),                       # the plain duplicates still 409
    ({"name": "fresh", "region_name": "RegionX"}, "region_name", "has-region"),
])
def test_it_refuses_a_name_or_region_already_in_the_namespace_with_409(operator, subcloud_factory, body, field, owner):
    subcloud_factory("has-region", region_name="RegionX")
    r = operator.post("/v1.0/subclouds/", body, format=JSON)
    assert r.status_code == 409, r.content
    assert r.json()["field"] == field
    assert repr(owner) in r.json()["error_message"]
    assert list(Subcloud.objects.values_list("name", flat=True)) == ["has-region"]
    assert EndpointStatus.objects.count() == 7
    # The region still reaches exactly its own subcloud.
    assert operator.get("/v1.0/subclouds/RegionX").json()["name"] == "has-region"


@pytest.mark.django_db
def test_it_refuses_a_collision_through_the_admin_command_too(subcloud_factory):
    subcloud_factory("has-region", region_name="RegionX")
    with pytest.raises(CommandError) as caught:
        call_command("subcloud", "add", "--name", "RegionX", stdout=StringIO(), stderr=StringIO())
    assert "RegionX" in str(caught.value) and "namespace" in str(caught.value)
    assert Subcloud.objects.count() == 1


def _waiting_for_advisory_lock():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cur.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", [{"name": "shared"}, {"name": "other", "region_name": "first"}],
                         ids=["name-is-first-region", "region-is-first-name"])
def test_it_lets_exactly_one_of_two_concurrent_colliding_registrations_win(second):
    """The second registration runs while the first has inserted but not committed: the check alone would miss it."""
    inserted, release = threading.Event(), threading.Event()
    outcome = {}

    def first():
        try:
            with transaction.atomic():
                operations.register_subcloud({"name": "first", "region_name": "shared"})
                inserted.set()
                release.wait(60)
            outcome["first"] = "registered"
        except Conflict as exc:
            outcome["first"] = exc
        finally:
            connections.close_all()

    def other():
        inserted.wait(60)
        try:
            operations.register_subcloud(second)
            outcome["second"] = "registered"
        except Conflict as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=other)]
    for t in threads:
        t.start()
    assert inserted.wait(60)
    # Let the first commit once the second is blocked on the names lock (or, without the lock, done).
    wait_until(lambda: "second" in outcome or _waiting_for_advisory_lock(), timeout=60)
    release.set()
    for t in threads:
        t.join(60)
    assert outcome["first"] == "registered"
    assert isinstance(outcome["second"], Conflict), outcome
    assert outcome["second"].status == 409
    assert list(Subcloud.objects.values_list("name", flat=True)) == ["first"]


@pytest.mark.django_db
def test_it_reports_stored_rows_that_break_the_rules_in_a_database_check(subcloud_factory):
    good = subcloud_factory("good", region_name="good-region")
    bad = subcloud_factory("bad")
    impostor = subcloud_factory("impostor")
    group = SubcloudGroup.objects.create(name="grp")
    assert checks.run_checks(tags=[checks.Tags.database], databases=["default"]) == []
    with connection.cursor() as cur:  # as a row written before these rules could be
        cur.execute("UPDATE subclouds_subcloud SET name = %s WHERE id = %s", ["bad.\u202ename", bad.pk])
        cur.execute("UPDATE subclouds_subcloud SET name = %s WHERE id = %s", ["good-region", impostor.pk])
        cur.execute("UPDATE subclouds_subcloudgroup SET name = %s WHERE id = %s", [" grp", group.pk])

    found = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert [w.id for w in found] == ["subclouds.W001"]
    assert found[0].level == checks.WARNING
    message = found[0].msg
    assert f"subcloud id {bad.pk} ('bad.\\u202ename')" in message
    assert f"region name 'good-region' is the name of subcloud id {impostor.pk}" in message
    assert f"subcloud group id {group.pk} (' grp')" in message
    assert f"subcloud id {good.pk} ('good')" in message  # the row whose region the impostor took
    assert "\u202e" not in message  # the report itself prints safely
    # Reported, not changed.
    assert Subcloud.objects.get(pk=bad.pk).name == "bad.\u202ename"
    # And through the command an operator runs; without --database it does not look.
    call_command("check", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(SystemCheckError, match="subclouds.W001"):
        call_command("check", "--database", "default", "--fail-level", "WARNING", stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize("value, shown", [
    ("plain é 子", "plain é 子"),
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    ("a\u202eb", "a\\u202eb"),
    ("line\nbreak\r", "line\\nbreak\\r"),
    ("tag\U000e0041", "tag\\U000e0041"),
    (None, "-"),
    (True, "true"),
])
def test_it_escapes_what_cannot_be_printed_in_command_tables(value, shown):
    assert cell(value) == shown
    assert table([{"v": value}], [("value", lambda row: row["v"])]).splitlines()[1] == shown


@pytest.mark.django_db
def test_it_lists_a_hostile_old_row_escaped(subcloud_factory):
    sc = subcloud_factory("victim")
    Subcloud.objects.filter(pk=sc.pk).update(name="x\x1b]0;owned\x07\u202e")
    out = StringIO()
    call_command("subcloud", "list", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "x\\x1b]0;owned\\x07\\u202e" in text
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
