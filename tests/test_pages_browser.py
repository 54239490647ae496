"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real daphne
subprocess, real state worker processes, PostgreSQL and Redis.

Every wait has a deadline (Playwright's expect); nothing sleeps to make a point.
Screenshots go to $DCPORTAL_SCREENSHOTS (the README's: docs/screenshots) or the test's tmp dir.
"""

import os
import random
import re
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.models import ApiToken
from portal.changes import current_revision
from state import operations
from state.models import StateChange
from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import EndpointStatus, Fault, Subcloud, SubcloudGroup
from tests.conftest import daphne_on_test_db, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-12345678"  # make_user's
WAIT_MS = 15000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev test installs Debian's chromium package")
    # Playwright's sync API runs an event loop in this thread; Django must still let the test touch the DB.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def server(transactional_db, tmp_path):
    """daphne on the test database; restartable on the same port (stop(), then launch().start())."""
    daphne = daphne_on_test_db(tmp_path).start()
    yield daphne
    daphne.stop(timeout=15)


@pytest.fixture
def screenshots(tmp_path):
    target = Path(os.environ.get("DCPORTAL_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


class QuickPBKDF2(PBKDF2PasswordHasher):
    """A hash daphne's default hashers can check (the tests' MD5 is not among them), cheap to make."""

    iterations = 1000


def log_in(browser, server, persona, viewport=(1400, 900), timezone_id=None):
    """A fresh browser context logged in as a new user of that persona; returns (page, user)."""
    user = make_user(persona)
    user.password = make_password(PASSWORD, hasher=QuickPBKDF2())
    user.save(update_fields=["password"])
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, base_url=server.url,
                                  timezone_id=timezone_id)
    page = context.new_page()
    page.goto("/portal/")
    page.get_by_label("User name").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.url}/portal/", timeout=WAIT_MS)
    return page, user


def wait_live(page):
    expect(page.locator("#conn")).to_have_text("Live", timeout=WAIT_MS)


def post_state(server, path, body):
    token = ApiToken.objects.issue(make_user("service"))[1]
    response = httpx.post(f"{server.url}/v1.0/state/{path}", json=body, headers={"X-Auth-Token": token}, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()


def cell(page, name, column):
    return page.locator(f'tr[data-key="{name}"] td:nth-child({column})')


def test_it_shows_a_state_update_on_the_subclouds_page_and_the_overview_without_reload(browser, server, workers):
    for name in ("sc-a", "sc-b", "sc-c"):
        operations.register_subcloud({"name": name})
    workers(1)
    subclouds, _ = log_in(browser, server, "reader")
    subclouds.goto("/portal/subclouds/")
    wait_live(subclouds)
    expect(cell(subclouds, "sc-b", 3)).to_have_text("offline", timeout=WAIT_MS)
    overview = subclouds.context.new_page()
    overview.goto("/portal/")
    wait_live(overview)
    expect(overview.locator('[data-count="online"]')).to_have_text("0")

    post_state(server, "availability", {"subcloud": "sc-b", "availability_status": "online"})

    expect(cell(subclouds, "sc-b", 3)).to_have_text("online", timeout=WAIT_MS)
    expect(overview.locator('[data-count="online"]')).to_have_text("1", timeout=WAIT_MS)
    expect(overview.locator('[data-count="offline"]')).to_have_text("2")
    assert Subcloud.objects.get(name="sc-b").availability_status == "online"
    # Neither page was reloaded: both still run on their first snapshot.
    assert subclouds.evaluate("dcportal.live.snapshots") == 1
    assert overview.evaluate("dcportal.live.snapshots") == 1


def test_it_lets_an_operator_manage_from_the_detail_page_with_refusals_shown_inline(browser, server, workers):
    operations.register_subcloud({"name": "sc-m"})
    workers(1)
    page, operator = log_in(browser, server, "operator")
    page.goto("/portal/subclouds/sc-m/")
    wait_live(page)
    manage = page.get_by_role("button", name="Manage", exact=True)

    manage.click()  # offline: the API refuses, and says why
    token = ApiToken.objects.issue(make_user("operator"))[1]
    refusal = httpx.patch(f"{server.url}/v1.0/subclouds/sc-m", json={"management-state": "managed"},
                          headers={"X-Auth-Token": token}, timeout=10)
    assert refusal.status_code == 400
    expect(page.locator("#manage-result")).to_have_text(refusal.json()["error_message"], timeout=WAIT_MS)
    assert Subcloud.objects.get(name="sc-m").management_state == "unmanaged"

    post_state(server, "availability", {"subcloud": "sc-m", "availability_status": "online"})
    expect(page.locator('.badges [data-field="availability-status"]')).to_have_text("online", timeout=WAIT_MS)
    manage.click()
    expect(page.locator("#manage-result")).to_have_text("sc-m is now managed.", timeout=WAIT_MS)
    expect(page.locator('.badges [data-field="management-state"]')).to_have_text("managed", timeout=WAIT_MS)
    expect(manage).to_be_disabled()
    assert Subcloud.objects.get(name="sc-m").management_state == "managed"
    expect(page.locator("#history")).to_contain_text("management-state: unmanaged → managed", timeout=WAIT_MS)


def test_it_gives_readers_no_actions_and_the_api_refuses_them(browser, server):
    operations.register_subcloud({"name": "sc-r"})
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/subclouds/sc-r/")
    wait_live(page)
    expect(page.get_by_role("button", name="Manage", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Unmanage")).to_have_count(0)
    # The same request the operator's button sends, with the reader's session and CSRF token.
    status = page.evaluate("""async () => {
        const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
        const r = await fetch("/v1.0/subclouds/sc-r", {method: "PATCH", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
            body: JSON.stringify({"management-state": "managed", "force": true})});
        return r.status;
    }""")
    assert status == 403
    assert Subcloud.objects.get(name="sc-r").management_state == "unmanaged"


def test_it_reconnects_after_a_daphne_restart_and_shows_every_change_made_meanwhile(browser, server, workers):
    for name in ("sc-x", "sc-y", "sc-z"):
        operations.register_subcloud({"name": name})
    workers(1)
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/subclouds/")
    wait_live(page)
    expect(page.locator("#shown")).to_have_text("3 subclouds")

    server.stop()
    expect(page.locator("#conn")).to_have_text("Reconnecting…", timeout=WAIT_MS)
    # Meanwhile: a worker applies an update, one subcloud is registered and one deleted.
    from state.intake import accept
    from state.models import StateUpdate, UpdateKind

    accept(UpdateKind.AVAILABILITY, [(Subcloud.objects.get(name="sc-x").pk,
                                      {"availability_status": "online", "update_state_only": False, "audit_fail_count": 0})])
    operations.register_subcloud({"name": "sc-new"})
    operations.delete_subcloud(Subcloud.objects.get(name="sc-z").pk)
    deadline = time.monotonic() + 20
    while StateUpdate.objects.filter(applied_at__isnull=True).exists():
        assert time.monotonic() < deadline, "the worker did not apply the update"
        time.sleep(0.05)
    server.launch().start()

    wait_live(page)
    expect(cell(page, "sc-x", 3)).to_have_text("online", timeout=WAIT_MS)
    expect(page.locator('tr[data-key="sc-new"]')).to_have_count(1)
    expect(page.locator('tr[data-key="sc-z"]')).to_have_count(0)
    expect(page.locator("#shown")).to_have_text("3 subclouds")
    # It resynced from its revision (no second snapshot) and now holds the whole log.
    assert page.evaluate("dcportal.live.snapshots") == 1
    assert page.evaluate("dcportal.live.revision") == current_revision()


def bulk_fleet(n, seed=4):
    """n subclouds with varied states and an hour of availability history, straight into the tables."""
    rng = random.Random(seed)
    groups = [SubcloudGroup.objects.create(name=g) for g in ("edge-east", "edge-west", "labs")]
    subclouds = Subcloud.objects.bulk_create(
        Subcloud(
            name=f"subcloud{i}",
            group=rng.choice(groups),
            description=f"Edge site {i}",
            location=rng.choice(["Ottawa", "Kanata", "Montreal", "Toronto", "Vancouver"]),
            availability_status="online" if rng.random() < 0.9 else "offline",
            management_state="managed" if rng.random() < 0.85 else "unmanaged",
            software_version="24.09",
        )
        for i in range(1, n + 1)
    )
    endpoints, faults = [], []
    for s in subclouds:
        for e in ENDPOINT_TYPES:
            online = s.availability_status == "online"
            status = "unknown" if not online else "out-of-sync" if rng.random() < 0.02 else "in-sync"
            endpoints.append(EndpointStatus(subcloud=s, endpoint_type=e, sync_status=status))
            if status == "out-of-sync":
                faults.append(Fault(alarm_id="280.002", entity_instance_id=f"subcloud={s.name}.resource={e}",
                                    severity="major", reason_text=f"{s.name} {e} sync_status is out-of-sync",
                                    subcloud=s, subcloud_name=s.name, raised_at=s.created_at))
        if s.availability_status == "offline":
            faults.append(Fault(alarm_id="280.001", entity_instance_id=f"subcloud={s.name}", severity="critical",
                                reason_text=f"{s.name} is offline", service_affecting=True, subcloud=s,
                                subcloud_name=s.name, raised_at=s.created_at))
    EndpointStatus.objects.bulk_create(endpoints)
    Fault.objects.bulk_create(faults)
    # A dead office 40 minutes ago (back 4 minutes later); today's offline ones dropped over the last half hour.
    now, changes = timezone.now(), []
    for s in subclouds[:800]:
        if s.availability_status == "online":
            for minutes, new, old in ((40, "offline", "online"), (36, "online", "offline")):
                changes.append(StateChange(subcloud=s, subcloud_name=s.name, changes={"availability_status": new},
                                           previous={"availability_status": old}, created_at=now - timedelta(minutes=minutes)))
    for s in subclouds:
        if s.availability_status == "offline":
            changes.append(StateChange(subcloud=s, subcloud_name=s.name, changes={"availability_status": "offline"},
                                       previous={"availability_status": "online"},
                                       created_at=now - timedelta(minutes=rng.uniform(0, 30))))
    StateChange.objects.bulk_create(sorted(changes, key=lambda c: c.created_at))
    return subclouds


def test_it_loads_and_filters_5000_subclouds(browser, server, screenshots):
    fleet = bulk_fleet(5000)
    offline = sum(1 for s in fleet if s.availability_status == "offline")
    page, _ = log_in(browser, server, "operator", viewport=(1600, 1000))
    started = time.monotonic()
    page.goto("/portal/subclouds/")
    expect(page.locator("#shown")).to_have_text("5000 subclouds", timeout=WAIT_MS)
    expect(cell(page, "subcloud1", 1)).to_have_text("subcloud1")
    loaded = time.monotonic() - started
    assert loaded < 10, f"5,000 subclouds took {loaded:.1f}s to load"
    # Only the rows in view are in the DOM.
    assert page.locator("tbody tr[data-key]").count() < 200
    page.screenshot(path=str(screenshots / "subclouds.png"))

    page.get_by_role("searchbox", name="Filter").fill("subcloud4999")
    expect(page.locator("#shown")).to_have_text("1 of 5000 subclouds", timeout=WAIT_MS)
    expect(page.locator("tbody tr[data-key]")).to_have_count(1)
    page.get_by_role("searchbox", name="Filter").fill("")
    page.get_by_label("Availability").select_option("offline")
    expect(page.locator("#shown")).to_have_text(f"{offline} of 5000 subclouds", timeout=WAIT_MS)
    page.get_by_role("button", name="Name").click()  # sort descending by name
    first = page.locator("tbody tr[data-key]").first
    expect(first).to_have_attribute("data-key", max((s.name for s in fleet if s.availability_status == "offline"),
                                                    key=lambda n: int(n.removeprefix("subcloud"))))

    page.goto("/portal/")
    expect(page.locator('[data-count="offline"]')).to_have_text(str(offline), timeout=WAIT_MS)
    expect(page.locator('[data-count="critical"]')).to_have_text(str(offline))
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)


def test_it_lists_alarms_live_and_filters_them_with_the_filter_kept_in_the_url(browser, server, workers):
    for name in ("al-x", "al-y"):
        operations.register_subcloud({"name": name})
    workers(1)
    for status in ("online", "offline"):  # the offline transition raises 280.001
        for name in ("al-x", "al-y"):
            post_state(server, "availability", {"subcloud": name, "availability_status": status})
    page, _ = log_in(browser, server, "reader")
    page.goto("/portal/alarms/")
    wait_live(page)
    rows = page.locator("tr[data-key]")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    page.get_by_role("searchbox", name="Filter").fill("al-x")
    expect(rows).to_have_count(1)
    assert "q=al-x" in page.url
    page.get_by_label("Severity").select_option("major")
    expect(rows).to_have_count(0)
    assert "severity=major" in page.url
    page.reload()  # the filters come back from the URL
    expect(page.get_by_role("searchbox", name="Filter")).to_have_value("al-x", timeout=WAIT_MS)


def test_it_shows_times_in_the_browsers_zone_the_same_way_on_every_page(browser, server, workers):
    operations.register_subcloud({"name": "tz-a"})
    workers(1)
    for status in ("online", "offline"):  # the offline transition raises 280.001
        post_state(server, "availability", {"subcloud": "tz-a", "availability_status": status})
    page, _ = log_in(browser, server, "reader", timezone_id="America/Toronto")
    page.goto("/portal/alarms/")
    wait_live(page)
    listed = page.locator("tr[data-key] time")
    expect(listed).to_have_count(1, timeout=WAIT_MS)
    raised = Fault.objects.get(subcloud__name="tz-a", cleared_at__isnull=True).raised_at
    local = raised.astimezone(ZoneInfo("America/Toronto"))
    full = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"  # EST or EDT, never UTC
    expect(listed).to_have_attribute("title", full)
    shown = listed.text_content()
    assert shown.endswith(local.tzname()) and f"{local:%H:%M}" in shown

    page.goto("/portal/subclouds/tz-a/")
    wait_live(page)
    detail = page.locator("#fault-rows time")
    expect(detail).to_have_attribute("title", full, timeout=WAIT_MS)
    expect(detail).to_have_text(shown)
    # The history and the fields use the same zone, in the full form.
    newest = page.locator("#history time").first
    expect(newest).to_have_text(re.compile(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {local.tzname()}$"))
    expect(page.locator('[data-field="created-at"]')).to_have_text(re.compile(rf" {local.tzname()}$"))
    assert "UTC" not in page.locator("#detail").inner_text()


def test_it_names_summer_and_winter_time_apart_with_one_cached_formatter(browser, server):
    """Zone names are cached per UTC offset (a formatter per time cell was a flood's longest task): a winter,
    a summer and a winter time again each get their own zone's name."""
    page, _ = log_in(browser, server, "reader", timezone_id="America/Toronto")
    names = page.evaluate("""() => ["2026-01-15 12:00:00.000000", "2026-07-15 12:00:00.000000", "2026-01-16 12:00:00.000000"]
        .map((t) => dcportal.formatTime(t, true))""")
    assert names == ["2026-01-15 07:00:00 EST", "2026-07-15 08:00:00 EDT", "2026-01-16 07:00:00 EST"]
