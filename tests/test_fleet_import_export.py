"""manage.py export_fleet / import_fleet: `dcmanager subcloud list -f json|csv`, all-or-nothing, safe to run twice."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from state.models import StateChange
from subclouds import fleetfile
from subclouds.models import Subcloud, SubcloudGroup

pytestmark = pytest.mark.django_db

# Columns a registration sets; the rest are live state or ids of the system that wrote the file.
KEPT = ("name", "description", "location", "software_version", "management_subnet", "management_start_ip",
        "management_end_ip", "management_gateway_ip", "systemcontroller_gateway_ip", "region_name", "group_name")


def export(fmt="json"):
    out = StringIO()
    call_command("export_fleet", "--format", fmt, stdout=out)
    return out.getvalue()


def import_(path, *args):
    out, err = StringIO(), StringIO()
    call_command("import_fleet", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def kept(text, fmt="json"):
    return sorted(({c: row.get(c) for c in KEPT} for row in fleetfile.loads(text, fmt)), key=lambda r: r["name"])


def snapshot():
    return (sorted(Subcloud.objects.values_list("name", "region_name", "group__name", "description")),
            sorted(SubcloudGroup.objects.values_list("name", flat=True)), StateChange.objects.count())


@pytest.fixture
def fleet(subcloud_factory):
    east, labs = SubcloudGroup.objects.create(name="east"), SubcloudGroup.objects.create(name="labs")
    subcloud_factory("sc1", description="Ottawa, \"main\" site", location="YOW", group_id=east,
                     management_subnet="192.168.101.0/24", management_start_ip="192.168.101.2",
                     management_end_ip="192.168.101.50", management_gateway_ip="192.168.101.1",
                     systemcontroller_gateway_ip="192.168.204.101", software_version="24.09")
    subcloud_factory("sc2", description="line one\nline two", group_id=labs, region_name="region-two")
    subcloud_factory("sc3")


@pytest.mark.parametrize("fmt", fleetfile.FORMATS)
def test_it_round_trips_the_fleet_through_an_empty_database_and_a_second_import_changes_nothing(fleet, tmp_path, fmt):
    text = export(fmt)
    before = kept(text, fmt)
    assert [r["name"] for r in before] == ["sc1", "sc2", "sc3"]
    Subcloud.objects.all().delete()
    SubcloudGroup.objects.exclude(pk=1).delete()
    path = tmp_path / f"fleet.{fmt}"
    path.write_text(text)

    logged = StateChange.objects.filter(changes__registered=True).count()
    out, err = import_(path)
    assert "Registered 3 subcloud(s) and 2 group(s); 0 already here." in out
    assert "checking" in err and "100%" in err  # the progress bar
    assert kept(export(fmt), fmt) == before
    assert StateChange.objects.filter(changes__registered=True).count() == logged + 3  # by register_subcloud

    state = snapshot()
    out, _ = import_(path)
    assert "Registered 0 subcloud(s) and 0 group(s); 3 already here." in out
    assert "difference" not in out
    assert snapshot() == state


def test_it_changes_nothing_on_a_dry_run_and_says_what_it_would_do(fleet, tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text(export())
    Subcloud.objects.filter(name="sc2").delete()
    state = snapshot()
    out, _ = import_(path, "--dry-run")
    assert "Dry run: would register 1 subcloud(s) and 0 group(s); 2 already here; nothing changed." in out
    assert "would register sc2" in out
    assert snapshot() == state


def test_it_reports_differences_without_changing_them(fleet, tmp_path):
    rows = json.loads(export())
    rows[0]["location"] = "Kanata"
    rows[1]["group_name"] = "east"
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(rows))
    state = snapshot()
    out, _ = import_(path)
    assert "2 difference(s) in subclouds already here (not changed):" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["sc1", "location", "Kanata", "YOW"] in lines
    assert ["sc2", "group_name", "east", "labs"] in lines
    assert snapshot() == state


def test_it_reads_the_upstream_clients_basic_list_and_its_empty_list(tmp_path):
    # `dcmanager subcloud list -f json` without --detail: basic_format's columns, spaces and all.
    basic = [{"id": 7, "name": "subcloud7", "management": "managed", "availability": "online",
              "deploy status": "complete", "sync": "in-sync", "backup status": None, "prestage status": None}]
    path = tmp_path / "basic.json"
    path.write_text(json.dumps(basic))
    import_(path)
    registered = Subcloud.objects.get()
    assert (registered.name, registered.group_id, registered.management_state) == ("subcloud7", 1, "unmanaged")
    # With no subcloud the client prints one row of "<none>".
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([dict.fromkeys(("id", "name", "management", "availability"), "<none>")]))
    out, _ = import_(empty)
    assert "Registered 0 subcloud(s)" in out


GOOD = {"name": "ok1", "group_name": "newgroup"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"name": "x"}), "a JSON list of objects is expected"),
        (json.dumps([GOOD, {"name": "x", "colour": "red"}]), "unknown column 'colour'"),
        (json.dumps([GOOD, {"description": "no name"}]), "row 2: name is required"),
        (json.dumps([GOOD, {"name": "bad(name)"}]), "row 2 (bad(name)): name: subcloud name must not contain"),
        (json.dumps([GOOD, {"name": "ok1"}]), "row 2 (ok1): name 'ok1' is already the name or region name of 'ok1'"),
        (json.dumps([GOOD, {"name": "x", "region_name": "ok1"}]), "region_name 'ok1' is already"),
        (json.dumps([GOOD, {"name": "taken-region"}]), "name 'taken-region' is already the name or region name of 'old'"),
        (json.dumps([GOOD, {"name": "x", "group_id": 99}]), "group_id 99 is no group here"),
        (json.dumps([GOOD, {"name": "x", "management_subnet": "300.1.1.0/24"}]), "is not a subnet"),
        (json.dumps([GOOD, {"name": "x", "description": {"a": 1}}]), "row 2: description must be a single value"),
        (json.dumps([GOOD, {"name": "x", "group_name": "default"}]), "group_name:"),
    ],
)
def test_it_refuses_a_bad_file_with_a_clear_error_and_changes_nothing(subcloud_factory, tmp_path, content, message):
    subcloud_factory("old", region_name="taken-region")
    path = tmp_path / "fleet.json"
    path.write_text(content)
    state = snapshot()
    with pytest.raises(CommandError) as refused:
        import_(path)
    assert message in str(refused.value)
    assert "nothing changed" in str(refused.value)
    assert snapshot() == state


def test_it_refuses_a_ragged_csv_and_a_binary_file(tmp_path):
    ragged = tmp_path / "fleet.csv"
    ragged.write_text("name,description\r\nok1,first\r\nok2,second,extra\r\n")
    with pytest.raises(CommandError, match="row 2: 3 values for 2 columns; nothing changed"):
        import_(ragged)
    binary = tmp_path / "fleet.json"
    binary.write_bytes(b"\xff\xfe[]")
    with pytest.raises(CommandError, match="not UTF-8 text; nothing changed"):
        import_(binary)
    assert not Subcloud.objects.exists()
