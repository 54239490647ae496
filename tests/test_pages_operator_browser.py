"""Operator work in the pages, in Chromium against daphne: edit a subcloud, groups, bulk actions, export; readers get none.

Fixtures and helpers are test_pages_browser.py's (real daphne on the test database, Debian's chromium).
"""

import json

import pytest
from playwright.sync_api import expect

from state import intake, operations
from state.models import UpdateKind
from subclouds import fleetfile
from subclouds.models import Subcloud, SubcloudGroup
from tests import test_pages_browser as pages
from tests.conftest import drain_updates
from tests.test_pages_browser import WAIT_MS, log_in, wait_live

browser, server = pages.browser, pages.server  # the fixtures, shared

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def online(*names):
    """Through the real state path, applied in-process before the page loads its snapshot."""
    for name in names:
        _, payload = intake.parse_availability({"subcloud": name, "availability_status": "online"})
        intake.accept(UpdateKind.AVAILABILITY, [(Subcloud.objects.get(name=name).pk, payload)])
    drain_updates()


def test_it_lets_an_operator_edit_a_subclouds_description_location_and_group(browser, server):
    operations.register_subcloud({"name": "sc-e", "description": "old text"})
    labs = SubcloudGroup.objects.create(name="labs")
    page, _ = log_in(browser, server, "operator")
    page.goto("/portal/subclouds/sc-e/")
    wait_live(page)
    page.get_by_label("Description").fill("Ottawa, rack 4")
    page.get_by_label("Location").fill("YOW")
    page.get_by_label("Group").select_option("labs")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#edit-result")).to_have_text("sc-e saved.", timeout=WAIT_MS)
    expect(page.locator('dd[data-field="description"]')).to_have_text("Ottawa, rack 4", timeout=WAIT_MS)
    expect(page.locator('dd[data-field="group_id"]')).to_have_text("labs", timeout=WAIT_MS)
    saved = Subcloud.objects.get(name="sc-e")
    assert (saved.description, saved.location, saved.group_id) == ("Ottawa, rack 4", "YOW", labs.pk)
    expect(page.locator("#history")).to_contain_text("old text", timeout=WAIT_MS)  # logged as an edit


def test_it_creates_renames_and_deletes_a_group_and_keeps_the_default_rules(browser, server):
    page, _ = log_in(browser, server, "operator")
    page.goto("/portal/groups/")
    new = page.locator("#new-group")
    new.get_by_label("Name").fill("labs")
    new.get_by_label("Description").fill("lab sites")
    new.get_by_role("button", name="Create group").click()
    expect(page.locator("#group-result")).to_have_text("Group labs created.", timeout=WAIT_MS)
    labs = SubcloudGroup.objects.get(name="labs")
    assert labs.description == "lab sites"

    # Default: no delete, no rename; a reserved name is refused with the API's message.
    default = page.locator('tr[data-group="Default"]')
    expect(default.get_by_role("button", name="Delete")).to_have_count(0)
    expect(default.get_by_label("Name of Default")).to_be_disabled()
    row = page.locator('tr[data-group="labs"]')
    row.get_by_label("Name of labs").fill("DEFAULT")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#group-result")).to_contain_text("reserved for the Default group", timeout=WAIT_MS)
    assert SubcloudGroup.objects.filter(name="labs").exists()

    operations.register_subcloud({"name": "sc-g", "group_id": labs})
    page.reload()
    row = page.locator('tr[data-group="labs"]')
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm-text")).to_have_text("Delete group labs? Its 1 subcloud move to Default.")
    page.locator("#confirm").get_by_role("button", name="Confirm").click()
    expect(page.locator("#group-result")).to_have_text("Group labs deleted.", timeout=WAIT_MS)
    expect(page.locator('tr[data-group="labs"]')).to_have_count(0)
    assert not SubcloudGroup.objects.filter(name="labs").exists()
    assert Subcloud.objects.get(name="sc-g").group_id == 1


def test_it_bulk_manages_a_selection_after_a_confirmation_with_the_count_and_names_each_refusal(browser, server):
    for name in ("sc-1", "sc-2", "sc-3", "other"):
        operations.register_subcloud({"name": name})
    online("sc-1", "sc-2")
    page, _ = log_in(browser, server, "operator")
    page.goto("/portal/subclouds/")
    wait_live(page)
    page.get_by_role("searchbox", name="Filter").fill("sc-")
    expect(page.locator("#shown")).to_have_text("3 of 4 subclouds", timeout=WAIT_MS)
    page.get_by_role("button", name="Select all shown").click()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_label("Action").select_option("manage")
    page.get_by_role("button", name="Apply…").click()

    expect(page.locator("#confirm-text")).to_have_text("Manage 3 selected subclouds?")
    page.locator("#confirm").get_by_role("button", name="Confirm").click()
    expect(page.locator("#bulk-summary")).to_have_text("Manage: 2 done, 1 refused.", timeout=WAIT_MS)
    expect(page.locator('#bulk-results li[data-subcloud="sc-3"]')).to_have_text(
        "sc-3: Subcloud sc-3 can be managed only when it is online")
    expect(page.locator('#bulk-results li[data-subcloud="sc-1"]')).to_have_text("sc-1: done")
    assert dict(Subcloud.objects.values_list("name", "management_state")) == {
        "sc-1": "managed", "sc-2": "managed", "sc-3": "unmanaged", "other": "unmanaged"}
    expect(page.locator('tr[data-key="sc-1"] td:nth-child(4)')).to_have_text("managed", timeout=WAIT_MS)

    # Cancelled: nothing is sent.
    page.get_by_label("Action").select_option("unmanage")
    page.get_by_role("button", name="Apply…").click()
    page.locator("#confirm").get_by_role("button", name="Cancel").click()
    assert Subcloud.objects.filter(management_state="managed").count() == 2


def test_it_exports_exactly_the_filtered_list_as_csv_and_json(browser, server, tmp_path):
    east = SubcloudGroup.objects.create(name="east")
    operations.register_subcloud({"name": "e-1", "group_id": east, "description": 'quoted "and", commas',
                                  "management_subnet": "192.168.1.0/24"})
    operations.register_subcloud({"name": "e-2", "group_id": east, "location": "line\nbreak"})
    operations.register_subcloud({"name": "w-1"})
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/subclouds/")
    wait_live(page)
    page.get_by_label("Group").select_option("east")
    expect(page.locator("#shown")).to_have_text("2 of 3 subclouds", timeout=WAIT_MS)

    from io import StringIO

    from django.core.management import call_command

    for fmt in ("csv", "json"):
        with page.expect_download() as info:
            page.get_by_role("button", name=f"Export {fmt.upper()}").click()
        path = tmp_path / f"page.{fmt}"
        info.value.save_as(path)
        exported = fleetfile.loads(path.read_text(), fmt)
        assert [r["name"] for r in exported] == ["e-1", "e-2"]
        # Row for row what export_fleet writes (the same columns and values), so import_fleet reads it.
        out = StringIO()
        call_command("export_fleet", "--format", fmt, stdout=out)
        whole = {r["name"]: r for r in fleetfile.loads(out.getvalue(), fmt)}
        assert exported == [whole["e-1"], whole["e-2"]]
    assert json.loads((tmp_path / "page.json").read_text())[0]["group_name"] == "east"


def test_it_offers_a_reader_no_actions_and_the_bulk_api_refuses_the_readers_session(browser, server):
    operations.register_subcloud({"name": "sc-r"})
    online("sc-r")
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/subclouds/")
    wait_live(page)
    expect(page.locator('tr[data-key="sc-r"]')).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#bulk")).to_have_count(0)
    expect(page.locator("input[data-select-row]")).to_have_count(0)
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()  # reading is for every role
    status = page.evaluate("""async () => {
        const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
        const r = await fetch("/v1.0/subcloud-bulk-actions", {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
            body: JSON.stringify({action: "manage", subclouds: ["sc-r"]})});
        return r.status;
    }""")
    assert status == 403
    assert Subcloud.objects.get(name="sc-r").management_state == "unmanaged"

    page.goto("/portal/subclouds/sc-r/")
    wait_live(page)
    expect(page.locator("#edit-form")).to_have_count(0)
    page.goto("/portal/groups/")
    expect(page.locator('tr[data-group="Default"]')).to_have_count(1)
    expect(page.locator("#groups-table input, #groups-table button, #new-group")).to_have_count(0)
