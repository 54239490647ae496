"""GET /v1.0/subclouds at 50,000: OpenStack-style paging (limit, marker, subclouds_links) and server-side sort.

Off by default: without these parameters the body is exactly dcmanager's list (issue 13, item 4).
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import EndpointStatus, Subcloud
from tests.conftest import make_user
from tests.test_api_subclouds import fleet, group, operator  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = "/v1.0/subclouds"


def bulk_fleet(n, prefix="sc"):
    """n subclouds (names in a different order than ids), each with its 7 endpoints; returns their names by id."""
    subclouds = Subcloud.objects.bulk_create(
        Subcloud(name=f"{prefix}{(i * 7919) % n:04d}", availability_status="online" if i % 3 else "offline") for i in range(n)
    )
    EndpointStatus.objects.bulk_create(EndpointStatus(subcloud=s, endpoint_type=e) for s in subclouds for e in ENDPOINT_TYPES)
    return [s.name for s in subclouds]


@pytest.fixture
def superuser():
    client = APIClient()
    client.force_authenticate(make_user("superuser"))  # no auth queries: every query counted is the list's
    return client


def walk(client, query):
    """Every page from `query` on, following the next links; returns (names, number of pages)."""
    names, pages, url = [], 0, f"{URL}?{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"subclouds", "subclouds_links"}
        names += [s["name"] for s in body["subclouds"]]
        pages += 1
        links = body["subclouds_links"]
        url = links[0]["href"] if links else None
        if links:
            assert links[0]["rel"] == "next" and urlsplit(url).path == URL
        assert pages < 100
    return names, pages


def test_it_answers_exactly_the_unpaged_list_without_paging_parameters(superuser):
    names = bulk_fleet(7)
    body = superuser.get(URL).json()
    assert list(body) == ["subclouds"]
    assert [s["name"] for s in body["subclouds"]] == names  # by id, as dcmanager's


def test_it_pages_through_every_subcloud_once_in_id_order(superuser):
    names = bulk_fleet(11)
    walked, pages = walk(superuser, "limit=4")
    assert walked == names
    assert pages == 3  # 4 + 4 + 3: the last page says there is no next one


def test_it_has_no_next_link_when_the_last_page_is_exactly_full(superuser):
    names = bulk_fleet(8)
    assert walk(superuser, "limit=4") == (names, 2)
    body = superuser.get(f"{URL}?limit=2&marker={names[5]}").json()  # a marker by name
    assert [s["name"] for s in body["subclouds"]] == names[6:]
    assert body["subclouds_links"] == []


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("sort_key=name", lambda s: (s["name"], s["id"])),
        ("sort_key=name&sort_dir=desc", lambda s: (s["name"], s["id"])),
        ("sort_key=availability-status", lambda s: (s["availability-status"], s["id"])),
        ("sort_key=availability-status&sort_dir=desc", lambda s: (s["availability-status"], s["id"])),
        ("sort_key=id&sort_dir=desc", lambda s: s["id"]),
    ],
)
def test_it_sorts_on_the_server_and_pages_through_ties_without_loss(superuser, sort, key):
    bulk_fleet(13)
    everything = superuser.get(URL).json()["subclouds"]
    expected = [s["name"] for s in sorted(everything, key=key, reverse="desc" in sort)]
    unpaged = superuser.get(f"{URL}?{sort}").json()
    assert list(unpaged) == ["subclouds"]  # sorted but not paged: no links
    assert [s["name"] for s in unpaged["subclouds"]] == expected
    assert walk(superuser, f"{sort}&limit=3")[0] == expected


def test_it_pages_the_filtered_list(operator, fleet):  # noqa: F811
    assert walk(operator, "availability-status=offline&limit=1") == (["gamma-edge", "delta-edge"], 2)
    # sync_status is the overall status of the endpoints, matched in SQL so that a page holds only matches
    assert walk(operator, "sync_status=unknown&limit=1") == (["gamma-edge", "delta-edge"], 2)
    assert walk(operator, "sync_status=in-sync&limit=1") == (["alpha-site"], 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("limit=ten", "limit"),
        ("sort_key=region", "sort_key"),
        ("sort_key=description", "sort_key"),  # may be null: no total order
        ("sort_dir=up", "sort_dir"),
        ("marker=nope", "marker"),
        ("marker=99999999999999999999", "marker"),
        ("limit=2&marker=123456", "marker"),
    ],
)
def test_it_refuses_bad_paging_parameters_naming_them(superuser, query, field):
    bulk_fleet(3)
    response = superuser.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field
    assert body["error_message"].startswith(f"{field}: ")


@pytest.mark.parametrize("param", ["limit=2", "sort_key=name", "marker=sc0001"])
def test_it_refuses_paging_or_sorting_the_past_list(superuser, param):
    bulk_fleet(3)
    response = superuser.get(f"{URL}?as_of={timezone.now().isoformat().replace('+', '%2B')}&{param}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == param.split("=")[0]
    assert "as_of" in response.json()["error_message"]


def test_it_costs_the_lists_two_queries_on_any_page(superuser):
    bulk_fleet(300)
    counts = []
    for query in ("limit=10", "limit=10&sort_key=name&marker=sc0150", "limit=200&sort_key=availability-status&marker=sc0007",
                  "sort_key=name&sort_dir=desc", "limit=5&sync_status=unknown&marker=sc0299"):
        with CaptureQueriesContext(connection) as queries:
            response = superuser.get(f"{URL}?{query}")
        assert response.status_code == 200
        assert response.json()["subclouds"], query
        counts.append(len(queries))
    assert counts == [2] * len(counts), counts


def test_its_next_link_keeps_the_filters_and_sort(superuser):
    bulk_fleet(10)
    body = superuser.get(f"{URL}?availability-status=online&sort_key=name&sort_dir=desc&limit=2").json()
    params = parse_qs(urlsplit(body["subclouds_links"][0]["href"]).query)
    assert params == {"availability-status": ["online"], "sort_key": ["name"], "sort_dir": ["desc"], "limit": ["2"],
                      "marker": [str(body["subclouds"][-1]["id"])]}
