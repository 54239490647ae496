"""Request bodies bounded at the server (dcportal/server.py), through a real daphne on the test database.

A body over DCPORTAL_MAX_BODY_BYTES gets the API's 413 JSON error before daphne
buffers it or Twisted parses it, whatever its type, path, credentials or framing,
and the process keeps answering meanwhile: /healthz and an open websocket are
probed while a 42 MB form arrives, and daphne's RSS is watched. Twisted parses no
form body, so a malformed multipart gets Django's JSON 400, not a bare one.
"""

import json
import re
import socket
import threading
import time

import httpx
import pytest
from django.conf import settings
from websockets.sync.client import connect

from accounts.models import ApiToken
from state.models import StateUpdate
from tests import test_pages_browser
from tests.conftest import make_user
from tests.test_security_input import TWENTY_MB

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

server = test_pages_browser.server  # the real daphne, started through dcportal.server

JSON = "application/json"
FORTY_TWO_MB = 42 * 10**6
# The issue asks for answers within 100 ms: the figures are printed (quiet machine: 11-51 ms). The bound
# only tells "served meanwhile" from "stalled": an unbounded body stalled every answer for 4-9 s, and a
# busy 2-core machine must not fail the test on scheduling alone.
PROBE_BOUND_SECONDS = 1.0
RSS_GROWTH_BOUND = 50 * 2**20


def token(persona):
    return ApiToken.objects.issue(make_user(persona))[1]


def assert_too_large(status, headers, body):
    assert status == 413, body[:300]
    assert headers.get("content-type") == JSON
    assert json.loads(body) == {"error_message": f"Request body larger than {settings.MAX_BODY_BYTES} bytes.",
                                "field": "body", "errors": {}}


def raw_post(server, path, content_type, size, chunk=256 * 1024, pause=0.0):
    """POST `size` bytes with an honest Content-Length over a plain socket, `chunk` at a time; then read the answer.

    Returns (status, headers, body). A client that sends all before reading: what the 413 must survive.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {size}\r\n\r\n".encode())
        block = b"a=1&" * (chunk // 4)  # many short fields: what makes parsing a form slow and big
        sent = 0
        try:
            while sent < size:
                sock.sendall(block[:size - sent])
                sent += len(block)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer is already on the way
        response = b""
        try:
            while data := sock.recv(65536):
                response += data
        except ConnectionResetError:
            pass
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, headers, body


def rss(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


class Probes:
    """Each in its own thread until stopped: GET /healthz timed, a websocket ping round trip timed, daphne's RSS."""

    def __init__(self, server, ws):
        self.healthz, self.pings, self.rss = [], [], []
        self.failures = []
        self.halt = threading.Event()
        http = httpx.Client(base_url=server.url, timeout=30)

        def get_healthz():
            if http.get("/healthz").status_code != 200:
                self.failures.append("/healthz not 200")

        def ping():
            if not ws.ping().wait(30):
                self.failures.append("no pong")

        self.threads = [threading.Thread(target=self._loop, args=(get_healthz, self.healthz), daemon=True),
                        threading.Thread(target=self._loop, args=(ping, self.pings), daemon=True),
                        threading.Thread(target=self._loop, args=(lambda: self.rss.append(rss(server.proc.pid)), []),
                                         daemon=True)]
        self.http = http

    def _loop(self, probe, seconds):
        while not self.halt.is_set():
            started = time.monotonic()
            probe()
            seconds.append(time.monotonic() - started)
            self.halt.wait(0.02)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.http.close()


def test_it_refuses_a_42_mb_form_without_credentials_and_keeps_answering_meanwhile(server):
    reader = token("reader")
    ws_url = server.url.replace("http://", "ws://") + "/ws/status/"
    with connect(ws_url, additional_headers={"X-Auth-Token": reader}, open_timeout=10, proxy=None, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=15))["type"] == "snapshot"
        httpx.get(server.url + "/healthz", timeout=10)  # warm: the first /healthz opens pooled connections
        baseline = rss(server.proc.pid)
        with Probes(server, ws) as probes:
            time.sleep(0.3)  # a few probes before the body starts
            answer = raw_post(server, "/login/", "application/x-www-form-urlencoded", FORTY_TWO_MB, pause=0.005)
            time.sleep(0.3)
    worst_healthz, worst_ping = max(probes.healthz), max(probes.pings)
    growth = max(probes.rss) - baseline
    print(f"\n42 MB form: {len(probes.healthz)} probes, /healthz worst {worst_healthz * 1000:.0f} ms, "
          f"websocket ping worst {worst_ping * 1000:.0f} ms, RSS {baseline / 2**20:.0f} MiB, "
          f"growth {growth / 2**20:.1f} MiB")
    assert_too_large(*answer)
    assert not probes.failures
    assert worst_healthz < PROBE_BOUND_SECONDS and worst_ping < PROBE_BOUND_SECONDS
    assert growth < RSS_GROWTH_BOUND


def test_it_refuses_a_10_mb_multipart_without_credentials(server):
    r = httpx.post(server.url + "/login/", files={"upload": ("big.bin", b"x" * 10 * 10**6)}, timeout=60)
    assert_too_large(r.status_code, r.headers, r.content)


def test_it_refuses_a_chunked_body_once_it_passes_the_limit(server):
    service = token("service")
    chunks = (b"x" * 2**16 for _ in range(settings.MAX_BODY_BYTES // 2**16 + 2))
    r = httpx.post(server.url + "/v1.0/state/bulk", content=chunks, timeout=60,
                   headers={"X-Auth-Token": service, "Content-Type": JSON})
    assert r.request.headers["transfer-encoding"] == "chunked" and "content-length" not in r.request.headers
    assert_too_large(r.status_code, r.headers, r.content)
    assert not StateUpdate.objects.exists()


def test_it_takes_a_chunked_body_under_the_limit(server, subcloud_factory):
    """Counting chunks does not lose them: a chunked update within the limit is accepted as usual."""
    subcloud_factory("sc1")
    body = json.dumps({"subcloud": "sc1", "availability_status": "online"}).encode()
    r = httpx.post(server.url + "/v1.0/state/availability", content=iter([body[:10], body[10:]]), timeout=30,
                   headers={"X-Auth-Token": token("service"), "Content-Type": JSON})
    assert r.status_code == 202, r.text
    assert StateUpdate.objects.count() == 1


@pytest.mark.parametrize(
    "framing",
    [b"", b"Transfer-Encoding: chunked\r\n"],  # no length at all (an empty body), or a chunked one
)
def test_it_answers_a_request_without_content_length_with_an_unframed_body(server, framing):
    """The answer's body is exactly its Content-Length of JSON, not chunk-framed (schemathesis sent such a POST)."""
    head = (b"POST /v1.0/subcloud-bulk-actions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"X-Auth-Token: " + token("operator").encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n" + framing + b"\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + (b"0\r\n\r\n" if framing else b""))
        response = b""
        while data := sock.recv(65536):
            response += data
    head, _, body = response.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    assert head.startswith(b"HTTP/1.1 400")
    assert int(headers["Content-Length"]) == len(body)
    assert json.loads(body)["field"] == "action"


def test_it_refuses_an_oversized_api_body_with_a_token_and_keeps_serving(server, subcloud_factory):
    """An honest Content-Length over the limit: refused on the headers, with the API's JSON, and nothing accepted."""
    subcloud_factory("sc1")
    headers = {"X-Auth-Token": token("service"), "Content-Type": JSON}
    r = httpx.post(f"{server.url}/v1.0/state/bulk", content=TWENTY_MB, headers=headers, timeout=60)
    assert_too_large(r.status_code, r.headers, r.content)
    assert not StateUpdate.objects.exists()
    r = httpx.post(f"{server.url}/v1.0/state/availability", json={"subcloud": "sc1", "availability_status": "online"},
                   headers=headers, timeout=10)
    assert r.status_code == 202
    assert StateUpdate.objects.count() == 1


def test_it_answers_a_malformed_multipart_with_the_json_error(server):
    no_boundary = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'
    r = httpx.post(server.url + "/v1.0/subclouds", content=no_boundary,
                   headers={"X-Auth-Token": token("operator"), "Content-Type": "multipart/form-data"}, timeout=30)
    assert r.status_code == 400, r.content[:300]
    assert r.headers["content-type"] == JSON
    error = r.json()
    assert set(error) == {"error_message", "field", "errors"} and "boundary" in error["error_message"]


def test_it_sends_no_server_banner(server):
    r = httpx.get(server.url + "/healthz", timeout=10)
    assert r.status_code == 200
    assert "server" not in r.headers


def test_it_answers_413_on_the_headers_alone_without_inviting_the_body(server):
    """A client that asks first (Expect: 100-continue) gets the 413 and no `100 Continue`, before sending a byte."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: {FORTY_TWO_MB}\r\nExpect: 100-continue\r\n\r\n".encode())
        response = b""
        while data := sock.recv(65536):  # the server closes its side after the answer
            response += data
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in response
    assert json.loads(body)["field"] == "body"
