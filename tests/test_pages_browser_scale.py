"""The subclouds page at a large fleet in Chromium (issue 13, item 3): windows keep it interactive.

The figures are PRINTED next to their floor and the issue's target; only generous sanity bounds are asserted
(a 2-core machine shared with other work). Run with -s to see them.
"""

import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import EndpointStatus, Subcloud
from tests.test_pages_browser import WAIT_MS, browser, cell, log_in, server

FIXTURES = (browser, server)  # test_pages_browser's Chromium and daphne, shared
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FLEET = 20000

# Resolves once the next window has been applied and the table has rendered it (the frame after).
NEXT_WINDOW = """() => new Promise((resolve) => {
    let done = false;
    dcportal.live.on((kind) => {
        if (kind !== "window" || done) return;
        done = true;
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
    });
})"""


def raw_fleet(n):
    """n subclouds (every 10th offline, every 7th unmanaged) and their endpoints, in two INSERT ... SELECTs."""
    s, e = Subcloud._meta.db_table, EndpointStatus._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {s} (name, region_name, description, location, software_version, management_state,
                                 availability_status, deploy_status, error_description, audit_fail_count,
                                 first_identity_sync_complete, openstack_installed, group_id, created_at)
                SELECT 'subcloud' || i, md5(i::text), 'Edge site ' || i, 'Ottawa', '24.09',
                       CASE WHEN i %% 7 = 0 THEN 'unmanaged' ELSE 'managed' END,
                       CASE WHEN i %% 10 = 0 THEN 'offline' ELSE 'online' END,
                       'complete', 'No errors present', 0, false, false, 1, now()
                FROM generate_series(1, %s) i""", [n])
        cur.execute(
            f"""INSERT INTO {e} (subcloud_id, endpoint_type, sync_status)
                SELECT s.id, t, CASE WHEN s.availability_status = 'online' THEN 'in-sync' ELSE 'unknown' END
                FROM {s} s, unnest(%s::text[]) t""", [list(ENDPOINT_TYPES)])


def timed(page, action):
    """Milliseconds from `action` (a JS statement) to the next window rendered, measured in the page."""
    return page.evaluate(f"""async () => {{
        const shown = ({NEXT_WINDOW})();
        const t0 = performance.now();
        {action}
        return (await shown) - t0;
    }}""")


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
    floor = min(timed(page, "dcportal.live.subscribe(Object.assign({}, dcportal.live.view, {offset: 0}));")
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
