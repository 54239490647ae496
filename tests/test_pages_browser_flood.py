"""The subclouds page under a flood of changes (issue 13, item 3): each frame does a bounded part of the work,
and the page still ends with exactly the right rows and counts.

Counts and states only: no wall-clock bound (the frame's 4 ms script budget can only make frames smaller).
"""

import httpx
import pytest
from playwright.sync_api import expect

from accounts.models import ApiToken
from bench.dead_office import offline_body, online_body, post_bulk
from bench.pages import raw_fleet
from subclouds.models import Subcloud
from tests.conftest import make_user
from tests.test_pages_browser import WAIT_MS, browser, log_in, server, wait_live

FIXTURES = (browser, server)  # test_pages_browser's Chromium and daphne, shared
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FLEET = 2000
REBUILD_ROWS = 8  # table.js: changed rows rebuilt per frame

# Every frame after a burst that changes every row of the window: how many rows show the change after it.
FRAMES_OF_A_BURST = """async () => {
    const live = dcportal.live;
    const cells = () => [...document.querySelectorAll("#subclouds-table tbody tr[data-key] td:nth-child(5)")];
    const rows = cells().length;
    live.receive({type: "changes", revision: live.revision, faults_raised: [], faults_cleared: [], last_change: {},
                  subclouds: live.order.map((name) => ({name, "deploy-status": "burst"}))});
    const done = [];
    while (done.length < 100) {
        // Registered after the table's frame callback: runs in the same frame, after it rendered.
        await new Promise((resolve) => requestAnimationFrame(resolve));
        done.push(cells().filter((td) => td.textContent === "burst").length);
        if (done[done.length - 1] === rows) break;
    }
    return {rows, done};
}"""

SHOWN = """() => [...document.querySelectorAll("#subclouds-table tbody tr[data-key]")].map((tr) => [tr.dataset.key,
    tr.children[2].textContent, tr.children[5].textContent])"""

MATCHES_STORE = f"""() => {{
    const shown = ({SHOWN})();
    return shown.length > 0 && shown.every(([name, availability, sync]) => {{
        const s = dcportal.live.subclouds.get(name);
        return availability === "online" && s["availability-status"] === "online" && sync === s.sync_status;
    }});
}}"""


def open_page(browser, server):
    page, _ = log_in(browser, server, "reader", viewport=(1600, 1000))
    page.goto("/portal/subclouds/")
    expect(page.locator("#shown")).to_have_text(f"{FLEET} subclouds", timeout=WAIT_MS)
    wait_live(page)
    return page


def test_it_spreads_a_burst_over_frames_of_at_most_8_rebuilt_rows_and_shows_it_all(browser, server):
    raw_fleet(FLEET)
    page = open_page(browser, server)

    result = page.evaluate(FRAMES_OF_A_BURST)

    rows, done = result["rows"], result["done"]
    assert rows > 2 * REBUILD_ROWS  # the view plus overscan: more than two frames' worth
    assert done[-1] == rows  # every row ends up showing the burst
    steps = [b - a for a, b in zip([0, *done], done)]
    assert all(0 < step <= REBUILD_ROWS for step in steps), steps  # each frame made progress, none did too much
    # The rows in view come first (here: the top rows, in order).
    names = [name for name, _, _ in page.evaluate(SHOWN)]
    first_frame = page.evaluate("""(n) => [...document.querySelectorAll(
        "#subclouds-table tbody tr[data-key]")].slice(0, n).every((tr) => tr.children[4].textContent === "burst")""",
                                steps[0])
    assert first_frame and names[:2] == ["subcloud1", "subcloud2"]


# A message too large for one slice (400,000 changes, all but the window's unknown to a windowed page, which
# ignores them), then a small one: the first is applied over several tasks, and still before the second.
SLICED_THEN_SMALL = """async () => {
    const live = dcportal.live;
    const start = live.revision;
    const [top] = live.order;
    const big = live.order.map((name) => ({name, "deploy-status": "big"}));
    for (let i = 0; i < 400000; i++) big.push({name: `elsewhere${i}`, "deploy-status": "big"});
    const heard = [];
    live.on((kind, info) => { if (kind === "changes") heard.push([live.revision, info.names.size]); });
    live.receive({type: "changes", revision: start + 1, subclouds: big, faults_raised: [], faults_cleared: [],
                  last_change: {}});
    const sliced = live.draining && live.revision === start;
    live.receive({type: "changes", revision: start + 2, subclouds: [{name: top, "deploy-status": "small"}],
                  faults_raised: [], faults_cleared: [], last_change: {}});
    while (heard.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    return {sliced, heard, top: live.subclouds.get(top)["deploy-status"], revision: live.revision - start,
            others: live.order.slice(1).every((name) => live.subclouds.get(name)["deploy-status"] === "big")};
}"""


def test_it_applies_a_large_message_in_slices_and_in_order(browser, server):
    raw_fleet(FLEET)
    page = open_page(browser, server)

    result = page.evaluate(SLICED_THEN_SMALL)

    assert result["sliced"]  # receive() returned with the big message not yet applied: the rest came in later tasks
    assert result["heard"] == [[result["heard"][0][0], result["heard"][0][1]], [result["heard"][0][0] + 1, 1]]
    assert result["heard"][0][1] > 400000  # the listeners heard of it once, whole
    assert (result["top"], result["revision"], result["others"]) == ("small", 2, True)  # big, then small
    expect(page.locator("#subclouds-table tbody tr[data-key] td:nth-child(5)").first).to_have_text("small")


def test_it_ends_a_dead_office_flood_with_exactly_the_right_rows_and_counts(browser, server, workers):
    names = raw_fleet(FLEET)
    page = open_page(browser, server)
    workers(2)
    token = ApiToken.objects.issue(make_user("service"))[1]
    http = httpx.Client(base_url=server.url, headers={"X-Auth-Token": token}, timeout=60)

    post_bulk(http, names, offline_body)
    page.wait_for_function(f"() => dcportal.live.counts.availability.offline === {FLEET}", timeout=WAIT_MS * 4)
    post_bulk(http, names, online_body)
    page.wait_for_function(f"() => dcportal.live.counts.availability.online === {FLEET}", timeout=WAIT_MS * 4)

    assert Subcloud.objects.filter(availability_status="online").count() == FLEET
    # Every row shown is what the store holds (online, its sync status), none left stale by a deferred frame,
    # in name order from the top; the count and the alarm badge are the fleet's.
    page.wait_for_function(MATCHES_STORE, timeout=WAIT_MS)
    assert [name for name, _, _ in page.evaluate(SHOWN)][:3] == ["subcloud1", "subcloud2", "subcloud3"]
    expect(page.locator("#shown")).to_have_text(f"{FLEET} subclouds")
    expect(page.locator("#nav-alarms")).to_be_hidden()
    assert page.evaluate("dcportal.live.counts.alarms.total") == 0
    # Every flash is taken off again.
    expect(page.locator("#subclouds-table tbody tr.flash")).to_have_count(0, timeout=WAIT_MS)
    # Rows further down, built when scrolled to, show the flood's end too.
    page.locator("#subclouds-table").evaluate("el => el.scrollTop = el.scrollHeight / 2")
    expect(page.locator('tbody tr[data-key="subcloud1"]')).to_have_count(0, timeout=WAIT_MS)
    page.wait_for_function(MATCHES_STORE, timeout=WAIT_MS)
    assert page.evaluate("dcportal.live.snapshots") == 1
