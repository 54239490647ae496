"""The history mode (?as_of=, time picker, timeline) and incidents on the pages, in Chromium."""

import re
from urllib.parse import quote

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from subclouds.models import Subcloud, SubcloudGroup
from tests.conftest import wait_until
from tests.test_pages_browser import WAIT_MS, browser, cell, log_in, post_state, server, wait_live

FIXTURES = (browser, server)  # test_pages_browser's Chromium and daphne, shared
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def availability(server, names, status):
    for name in names:
        post_state(server, "availability", {"subcloud": name, "availability_status": status})
    wait_until(lambda: Subcloud.objects.filter(name__in=names, availability_status=status).count() == len(names),
               message=f"{names} {status}")


def test_it_shows_the_fleet_as_of_a_past_time_marked_as_history_without_live_updates(browser, server, workers):
    from state import operations

    for name in ("sc-a", "sc-b"):
        operations.register_subcloud({"name": name})
    workers(1)
    availability(server, ["sc-a"], "online")
    moment = timezone.now()
    availability(server, ["sc-a"], "offline")

    page, _ = log_in(browser, server, "reader", timezone_id="UTC")
    page.goto(f"/portal/subclouds/?as_of={quote(moment.isoformat())}")
    banner = page.locator("#history-banner")
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text("History, not live")
    expect(page.locator("#conn")).to_have_text("History")
    expect(cell(page, "sc-a", 3)).to_have_text("online", timeout=WAIT_MS)  # as it was; offline now
    assert page.evaluate("dcportal.live.ws") is None  # no feed in history mode

    availability(server, ["sc-b"], "online")  # a live change: not applied to the history
    live_page = page.context.new_page()
    live_page.goto("/portal/subclouds/")
    wait_live(live_page)
    expect(cell(live_page, "sc-b", 3)).to_have_text("online", timeout=WAIT_MS)
    expect(cell(page, "sc-b", 3)).to_have_text("offline")
    assert page.evaluate("dcportal.live.snapshots") == 1

    page.get_by_role("link", name="Back to live").click()
    wait_live(page)
    expect(page.locator("#history-banner")).to_be_hidden()
    expect(cell(page, "sc-a", 3)).to_have_text("offline", timeout=WAIT_MS)
    expect(cell(page, "sc-b", 3)).to_have_text("online")

    # The time picker (the browser's local time, here UTC) and the overview's timeline lead to the same mode.
    picked = moment.replace(second=0, microsecond=0)
    page.get_by_label("Show as of").fill(picked.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"as_of=" + re.escape(picked.strftime("%Y-%m-%dT%H%%3A%M"))), timeout=WAIT_MS)
    expect(page.locator("#history-banner")).to_be_visible(timeout=WAIT_MS)
    page.goto("/portal/")
    page.locator("#timeline rect").last.click()
    expect(page).to_have_url(re.compile(r"/portal/\?as_of="), timeout=WAIT_MS)
    expect(page.locator("#history-banner")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#conn")).to_have_text("History")


def test_it_shows_an_open_incident_first_on_the_overview_and_groups_alarms_by_it(browser, server, workers):
    from state import operations

    office = SubcloudGroup.objects.create(name="office")
    members = [f"office-{i}" for i in range(6)]
    rest = [f"rest-{i}" for i in range(3)]
    for name in members:
        operations.register_subcloud({"name": name, "group_id": office})
    for name in rest:
        operations.register_subcloud({"name": name})
    workers(1)
    availability(server, members + rest, "online")
    availability(server, members, "offline")  # the office dies; the rest stays up

    page, _ = log_in(browser, server, "reader")
    incident = page.locator("#open-incidents [data-incident]")
    expect(incident).to_have_count(1, timeout=WAIT_MS)
    expect(incident).to_contain_text("open, office")
    expect(incident.locator("[data-still-affected]")).to_have_text("6")
    # It comes before the counts.
    assert page.evaluate("document.querySelector('#open-incidents').compareDocumentPosition("
                         "document.querySelector('.cards')) & Node.DOCUMENT_POSITION_FOLLOWING")
    page.goto("/portal/alarms/")
    expect(page.locator("#by-incident [data-incident]")).to_have_count(1, timeout=WAIT_MS)

    availability(server, members, "online")
    page.goto("/portal/")
    wait_live(page)
    expect(page.locator("#open-incidents [data-incident]")).to_have_count(0)
