"""What the upstream dcmanager client (starlingx/distcloud-client, stx.11 / stx.12) reads from each response.

The keys below are the ones its managers (api/v1/*_manager.py, api/base.py) index or pass as required
arguments, and the rules its table formatters (commands/v1/*_manager.py) apply: a missing required key
is a crash in the client, a row longer than its header is cliff's "Row has incorrect number of values".
Errors: its _raise_api_exception reads webob's HTML page, line 2 of <body> as the explanation, the rest
as Details; any other body is printed raw.
"""

from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db

# Subcloud.__init__'s positional parameters, as payload keys (api/base.py _PAYLOAD_NAME_MAP): all must be there.
SUBCLOUD_REQUIRED = ["id", "name", "description", "location", "software-version", "management-state",
                     "availability-status", "deploy-status", "management-subnet", "management-start-ip",
                     "management-end-ip", "management-gateway-ip", "systemcontroller-gateway-ip", "created-at",
                     "updated-at", "group_id"]
# basic_detail_format's 21 columns; `list-subclouds` (a Lister over detail_format) adds a column per
# endpoint_sync_status entry and one for an oam_floating_ip other than "unavailable" to each row only.
DETAIL_FORMAT_COLUMNS = 21
GROUP_KEYS = ["id", "name", "description", "update_apply_type", "max_parallel_subclouds", "created-at", "updated-at"]
ALARM_KEYS = ["region_name", "critical_alarms", "major_alarms", "minor_alarms", "warnings", "cloud_status"]


def extra_detail_columns(subcloud):
    """The columns detail_format appends to a row beyond its header, for one payload."""
    extra = len(subcloud.get("endpoint_sync_status") or [])
    extra += subcloud.get("oam_floating_ip", "unavailable") != "unavailable"
    extra += subcloud.get("deploy_config_sync_status", "unknown") != "unknown"
    return extra


@pytest.fixture
def dcmanager(client_as):
    """The operator persona, sending what the dcmanager client sends (X-Project-Id, Accept: */*)."""
    client = client_as("operator")
    client.credentials(HTTP_X_AUTH_TOKEN=client.token, HTTP_X_PROJECT_ID="admin", HTTP_ACCEPT="*/*")
    return client


def test_it_gives_every_subcloud_response_the_keys_the_client_requires(dcmanager, subcloud_factory):
    sc = subcloud_factory("sc1")
    bodies = [dcmanager.get("/v1.0/subclouds/").json()["subclouds"][0], dcmanager.get(f"/v1.0/subclouds/{sc.pk}").json(),
              dcmanager.get(f"/v1.0/subclouds/{sc.pk}/detail").json(),
              dcmanager.get("/v1.0/subcloud-groups/1/subclouds").json()["subclouds"][0]]
    for body in bodies:
        assert [k for k in SUBCLOUD_REQUIRED if k not in body] == []
        assert isinstance(body["sync_status"], str)


def test_it_lists_a_groups_subclouds_with_rows_as_long_as_the_clients_header(dcmanager, subcloud_factory):
    """`subcloud-group list-subclouds` printed "Row has incorrect number of values, (actual) 28!=21" before."""
    subcloud_factory("sc1")
    subcloud_factory("sc2")
    listed = dcmanager.get("/v1.0/subcloud-groups/Default/subclouds/").json()["subclouds"]
    assert [s["name"] for s in listed] == ["sc1", "sc2"]
    assert [extra_detail_columns(s) for s in listed] == [0, 0]
    assert DETAIL_FORMAT_COLUMNS + extra_detail_columns(listed[0]) == 21


def test_it_sends_show_detail_extras_as_upstream_does(dcmanager, subcloud_factory):
    body = dcmanager.get(f"/v1.0/subclouds/{subcloud_factory('sc1').pk}/detail").json()
    # The client indexes these three; "unavailable" / "unknown" make it leave the rows out (not print None).
    assert (body["oam_floating_ip"], body["deploy_config_sync_status"]) == ("unavailable", "unknown")
    assert body["region_name"] == body["region-name"]


def test_it_gives_group_and_alarm_responses_the_keys_the_client_indexes(dcmanager, subcloud_factory):
    subcloud_factory("sc1")
    groups = dcmanager.get("/v1.0/subcloud-groups/").json()["subcloud_groups"]
    one = dcmanager.get("/v1.0/subcloud-groups/Default").json()
    for group in (*groups, one):
        assert [k for k in GROUP_KEYS if k not in group] == []
    [alarm] = dcmanager.get("/v1.0/alarms/").json()["alarm_summary"]
    assert [k for k in ALARM_KEYS if k not in alarm] == []
    assert all(int(alarm[k]) >= 0 for k in ALARM_KEYS[1:5])


class BodyText(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.text = False, []

    def handle_starttag(self, tag, attrs):
        self.inside |= tag == "body"

    def handle_data(self, data):
        if self.inside:
            self.text.append(data)


def client_message(response):
    """What the client prints for an error response: its _raise_api_exception's rule."""
    if response["Content-Type"].startswith("text/html"):
        parser = BodyText()
        parser.feed(response.content.decode())
        lines = [line.strip() for line in "".join(parser.text).strip().split("\n") if line.strip()]
        if parser.inside and lines:
            explanation = lines[1] if len(lines) > 1 else lines[0]
            details = "\n".join(lines[2:]) if len(lines) > 2 else None
            return explanation + ("" if explanation.endswith(".") else ".") + (f"\nDetails: {details}" if details else "")
    return response.content.decode()


def test_it_sends_the_dcmanager_client_an_error_page_it_prints_as_a_clean_message(dcmanager, client_as, subcloud_factory):
    subcloud_factory("sc1")
    r = dcmanager.patch("/v1.0/subclouds/sc1", {"management-state": "managed"}, format="json")
    assert r.status_code == 400
    assert r["Content-Type"].startswith("text/html")
    printed = client_message(r)
    assert printed.startswith("The server could not comply with the request")
    assert printed == ("The server could not comply with the request since it is either malformed or otherwise incapable"
                       " of performing it.\nDetails: Subcloud sc1 can be managed only when it is online")
    r = dcmanager.get("/v1.0/subclouds/<ghost>")
    assert r.status_code == 404
    message = client_as("reader").get("/v1.0/subclouds/<ghost>").json()["error_message"]
    assert "<ghost>" in message
    assert client_message(r) == f"The resource could not be found.\nDetails: {message}"


@pytest.mark.parametrize("headers", [{}, {"HTTP_ACCEPT": "*/*"}, {"HTTP_ACCEPT": "application/json"},
                                     {"HTTP_X_PROJECT_ID": "admin", "HTTP_ACCEPT": "application/json"}])
def test_it_keeps_the_json_error_body_for_every_other_client(client_as, subcloud_factory, headers):
    subcloud_factory("sc1")
    client = client_as("operator")
    r = client.patch("/v1.0/subclouds/sc1", {"management-state": "bogus"}, format="json", **headers)
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error_message", "field", "errors"}
    assert body["field"] == "management-state"


def test_it_sends_the_error_page_for_refused_credentials_too(client_as):
    r = client_as(None).get("/v1.0/subclouds", HTTP_X_PROJECT_ID="admin", HTTP_X_AUTH_TOKEN="dcp_forged")
    assert r.status_code == 401
    assert client_message(r).startswith("This server could not verify that you are authorized")
