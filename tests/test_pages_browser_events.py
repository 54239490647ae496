"""Who did what and availability history in Chromium: the events page's filters (kept in the URL) and the
detail page's uptime and timeline strip. Fixtures and login from test_pages_browser."""

import getpass
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from state import operations
from state.models import StateChange
from subclouds.models import Subcloud, SubcloudGroup
from tests.test_pages_browser import WAIT_MS, browser, log_in, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_it_filters_the_events_page_and_keeps_the_filters_in_the_url(browser, server):  # noqa: F811
    east = SubcloudGroup.objects.create(name="east")
    operations.register_subcloud({"name": "sc-east", "group_id": east})
    call_command("subcloud", "add", "--name", "sc-cmd", stdout=StringIO(), stderr=StringIO())
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/events/")
    rows = page.locator("#events-table tbody tr[data-revision]")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator('tr:has-text("sc-cmd") .actor')).to_contain_text(f"admin command · {getpass.getuser()}")
    page.get_by_label("Source").select_option("command")  # a select applies at once
    expect(page).to_have_url(f"{server.url}/portal/events/?subcloud=&group=&actor=&source=command&kind=&since=&until=",
                             timeout=WAIT_MS)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("sc-cmd")
    page.get_by_label("Source").select_option("")
    page.get_by_label("Group").select_option("east")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_contain_text("sc-east")
    page.reload()  # the URL holds the filters
    expect(page.get_by_label("Group")).to_have_value(str(east.pk))
    expect(rows).to_have_count(1)
    page.get_by_label("Kind").select_option("sync")
    expect(page.locator("tr.empty")).to_have_text("No events match.", timeout=WAIT_MS)
    page.goto("/portal/events/?since=yesterday")
    expect(page.locator("#events-error")).to_contain_text("since: must be a date and time")


def test_it_shows_uptime_and_the_availability_timeline_on_the_detail_page(browser, server):  # noqa: F811
    sc = operations.register_subcloud({"name": "sc-up"})
    now = timezone.now()
    Subcloud.objects.filter(pk=sc.pk).update(created_at=now - timedelta(days=30), availability_status="online")
    for hours, before, after in ((12, "offline", "online"), (6, "online", "offline"), (3, "offline", "online")):
        StateChange.objects.create(subcloud=sc, subcloud_name=sc.name, changes={"availability_status": after},
                                   previous={"availability_status": before}, created_at=now - timedelta(hours=hours))
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/subclouds/sc-up/")
    # 24 h: offline 12 h (before the first change), online 6 h, offline 3 h, online 3 h -> 9 of 24 h up.
    expect(page.locator('[data-uptime="24h"]')).to_have_text("37.50 %", timeout=WAIT_MS)
    periods = page.locator("#timeline .period")
    expect(periods).to_have_count(4)
    assert [periods.nth(i).get_attribute("data-status") for i in range(4)] == ["offline", "online", "offline", "online"]
    width = page.evaluate("() => document.querySelector('#timeline .period').getBoundingClientRect().width")
    total = page.evaluate("() => document.getElementById('timeline').getBoundingClientRect().width")
    assert abs(width / total - 0.5) < 0.02  # the first 12 of 24 hours
    page.get_by_label("7 d").check()
    # 7 d with the default 7-day retention: the same, plus 6 more days offline before.
    expect(page.locator('[data-uptime="7d"]')).to_have_text(f"{9 / 168 * 100:.2f} %")
    expect(periods).to_have_count(4)
