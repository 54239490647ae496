"""The subclouds page at a large fleet in Chromium (issue 13, item 3): windows keep it interactive.

The figures are PRINTED next to their floor and the issue's target; only generous sanity bounds are asserted
(a 2-core machine shared with other work). Run with -s to see them.
"""

import time

import pytest
from playwright.sync_api import expect

from bench.pages import SAME_VIEW, raw_fleet, timed
from tests.test_pages_browser import WAIT_MS, browser, cell, log_in, server

FIXTURES = (browser, server)  # test_pages_browser's Chromium and daphne, shared
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FLEET = 20000

def test_it_keeps_the_subclouds_page_interactive_at_20000_subclouds(browser, server):
    raw_fleet(FLEET)
    page, _ = log_in(browser, server, "reader", viewport=(1600, 1000))

    started = time.monotonic()
    page.goto("/portal/subclouds/", wait_until="domcontentloaded")
    bare = time.monotonic() - started  # the page without its data: the floor of navigation
    expect(page.locator("#shown")).to_have_text(f"{FLEET} subclouds", timeout=WAIT_MS)
    expect(cell(page, "subcloud1", 1)).to_have_text("subcloud1")
    interactive = time.monotonic() - started
    # Only rows near the view were sent and are in the DOM.
    assert page.evaluate("dcportal.live.subclouds.size") <= 500
    assert page.locator("tbody tr[data-key]").count() < 200

    # The floor of a filter or sort: the same round trip for the view unchanged (a fresh window).
    floor = min(timed(page, SAME_VIEW)
                for _ in range(3))
    offline = timed(page, """const el = document.getElementById("f-availability"); el.value = "offline";
                             el.dispatchEvent(new Event("input", {bubbles: true}));""")
    expect(page.locator("#shown")).to_have_text(f"{FLEET // 10} of {FLEET} subclouds")
    text = timed(page, """const el = document.getElementById("f-text"); el.value = "subcloud1999";
                          el.dispatchEvent(new Event("input", {bubbles: true}));""")
    expect(page.locator("#shown")).to_have_text(f"1 of {FLEET} subclouds")
    page.get_by_role("searchbox", name="Filter").fill("")
    page.get_by_label("Availability").select_option("")
    expect(page.locator("#shown")).to_have_text(f"{FLEET} subclouds", timeout=WAIT_MS)
    by_name = timed(page, """document.querySelector('th[data-sort="name"] button').click();""")
    expect(page.locator("tbody tr[data-key]").first).to_have_attribute("data-key", f"subcloud{FLEET}")
    by_availability = timed(page, """document.querySelector('th[data-sort="availability-status"] button').click();""")
    expect(page.locator("tbody tr[data-key]").first).to_have_attribute("data-key", "subcloud10")  # offline first
    # Scrolling far down loads the window there.
    page.locator("#subclouds-table").evaluate("el => el.scrollTop = el.scrollHeight / 2")
    expect(page.locator("tbody tr[data-key]").first).not_to_have_attribute("data-key", "subcloud10", timeout=WAIT_MS)

    print(f"\n[{FLEET} subclouds] interactive {interactive:.2f} s from navigation "
          f"(floor: the page without data {bare:.2f} s; target 1 s at 50,000)")
    print(f"[{FLEET} subclouds] filter availability {offline:.0f} ms, text {text:.0f} ms, sort name {by_name:.0f} ms, "
          f"sort availability {by_availability:.0f} ms (floor: an unchanged view's round trip {floor:.0f} ms; target 100 ms)")
    # Sanity only (a busy 2-core machine): the targets are printed above.
    assert interactive < 5
    assert max(offline, text, by_name, by_availability) < 5000
