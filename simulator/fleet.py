"""A fleet of fake subclouds on 127.0.0.1, and a fake dcorch / certmon receiver.

HTTP interface (JSON everywhere):
- GET  /subclouds/<name>/audit: the probe. 200 {"endpoints": {type: status}}
  when online; 503 when offline; no answer at all when unreachable (the
  prober times out). Unknown name: 404 (a failed probe too).
- GET  /control: fleet summary; GET /control/subclouds/<name>: one subcloud.
- POST /control {"action": A, "subclouds": [names] | "all": true, ...}:
  online | offline | unreachable (stops any flapping of those subclouds);
  drift {"endpoint": E (default platform), "status": S (default out-of-sync)};
  sync {"endpoint": E (default every endpoint)}: back in-sync;
  flap {"period": seconds}: alternate offline / online every period;
  dead-office {"seconds": S}: everything offline, back online after S (if given);
  receiver-down / receiver-up {"receiver": "dcorch" | "certmon"}: the receiver
  answers 503 / takes notices again; receiver-reset: forget what it received.
- POST /receivers/<kind>: a notice (counted, logged); GET /receivers/<kind>
  [?subcloud=NAME]: {"count", "refused", "received": [{"at", "body"}]}.

`manage.py simulate_subclouds` serves it; `manage.py simulate_control` drives it.
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from aiohttp import web

from state.kinds import OutboxKind
from subclouds.choices import ENDPOINT_TYPES, SyncStatus

log = logging.getLogger("simulator.fleet")

ONLINE, OFFLINE, UNREACHABLE = "online", "offline", "unreachable"
# The receivers the simulator stands in for: the outbox kinds the audit app POSTs (audit/outbox.py).
RECEIVER_KINDS = (OutboxKind.DCORCH.value, OutboxKind.CERTMON.value)
DEFAULT_FLAP_SECONDS = 30.0


def audit_url(base_url, name):
    """The audit URL of simulated subcloud `name` on the simulator at base_url."""
    return f"{base_url.rstrip('/')}/subclouds/{name}/audit"


def receiver_url(base_url, kind):
    return f"{base_url.rstrip('/')}/receivers/{kind}"


@dataclass
class FakeSubcloud:
    name: str
    mode: str = ONLINE
    endpoints: dict = field(default_factory=lambda: dict.fromkeys(ENDPOINT_TYPES, SyncStatus.IN_SYNC))
    probes: int = 0

    def as_json(self):
        return {"name": self.name, "mode": self.mode, "endpoints": self.endpoints, "probes": self.probes}


@dataclass
class Receiver:
    down: bool = False
    refused: int = 0
    received: list = field(default_factory=list)


class BadRequest(Exception):
    pass


class Fleet:
    """The simulated subclouds and receivers; every change goes through apply()."""

    def __init__(self, names):
        self.subclouds = {name: FakeSubcloud(name) for name in names}
        self.receivers = {kind: Receiver() for kind in RECEIVER_KINDS}
        # name -> asyncio.TimerHandle of the subcloud's next scheduled change (flap, end of an outage, chaos).
        self.timers = {}
        self.flapping = set()

    def summary(self):
        modes = {ONLINE: 0, OFFLINE: 0, UNREACHABLE: 0}
        out_of_sync = 0
        for sc in self.subclouds.values():
            modes[sc.mode] += 1
            out_of_sync += any(s != SyncStatus.IN_SYNC for s in sc.endpoints.values())
        return {
            "subclouds": len(self.subclouds),
            **modes,
            "out_of_sync": out_of_sync,
            "flapping": sorted(self.flapping),
            "probes": sum(sc.probes for sc in self.subclouds.values()),
            "receivers": {k: {"count": len(r.received), "refused": r.refused, "down": r.down} for k, r in self.receivers.items()},
        }

    def select(self, body):
        if body.get("all"):
            return list(self.subclouds.values())
        names = body.get("subclouds") or []
        if isinstance(names, str):
            names = [names]
        unknown = [n for n in names if n not in self.subclouds]
        if unknown or not names:
            raise BadRequest(f"unknown subclouds: {unknown}" if unknown else "give 'subclouds' or 'all'")
        return [self.subclouds[n] for n in names]

    def _cancel(self, name):
        timer = self.timers.pop(name, None)
        if timer:
            timer.cancel()
        self.flapping.discard(name)

    def _later(self, seconds, name, callback, flap=False):
        self._cancel(name)
        def fire():
            self.timers.pop(name, None)
            self.flapping.discard(name)
            callback()

        self.timers[name] = asyncio.get_running_loop().call_later(seconds, fire)
        if flap:
            self.flapping.add(name)

    def set_mode(self, sc, mode, until=None):
        """Set a subcloud's mode; with `until` seconds, back online afterwards."""
        self._cancel(sc.name)
        sc.mode = mode
        if until:
            self._later(until, sc.name, lambda: self.set_mode(sc, ONLINE))

    def flap(self, sc, period):
        def flip():
            sc.mode = ONLINE if sc.mode != ONLINE else OFFLINE
            self._later(period, sc.name, flip, flap=True)

        self._cancel(sc.name)
        flip()

    def apply(self, body):
        action = body.get("action")
        if action in (ONLINE, OFFLINE, UNREACHABLE):
            chosen = self.select(body)
            for sc in chosen:
                self.set_mode(sc, action, body.get("seconds"))
            return {"changed": len(chosen)}
        if action in ("drift", "sync"):
            chosen = self.select(body)
            default = "platform" if action == "drift" else None
            endpoint = body.get("endpoint", default)
            if endpoint is not None and endpoint not in ENDPOINT_TYPES:
                raise BadRequest(f"unknown endpoint {endpoint!r}")
            status = body.get("status", SyncStatus.OUT_OF_SYNC) if action == "drift" else SyncStatus.IN_SYNC
            if status not in SyncStatus.values:
                raise BadRequest(f"unknown status {status!r}")
            for sc in chosen:
                for e in [endpoint] if endpoint else ENDPOINT_TYPES:
                    sc.endpoints[e] = status
            return {"changed": len(chosen)}
        if action == "flap":
            chosen = self.select(body)
            for sc in chosen:
                self.flap(sc, float(body.get("period", DEFAULT_FLAP_SECONDS)))
            return {"changed": len(chosen)}
        if action == "dead-office":
            for sc in self.subclouds.values():
                self.set_mode(sc, OFFLINE, body.get("seconds"))
            return {"changed": len(self.subclouds)}
        if action in ("receiver-down", "receiver-up", "receiver-reset"):
            receiver = self.receivers.get(body.get("receiver"))
            if receiver is None:
                raise BadRequest(f"'receiver' must be one of {', '.join(RECEIVER_KINDS)}")
            if action == "receiver-reset":
                receiver.received.clear()
                receiver.refused = 0
            else:
                receiver.down = action == "receiver-down"
            return {"receiver": body["receiver"], "down": receiver.down}
        raise BadRequest(f"unknown action {action!r}")

    def seed_weather(self, rng):
        """The demo's starting point: a few sites down and a few drifted, each for a few minutes."""
        for sc in self.subclouds.values():
            roll = rng.random()
            if roll < 0.05:
                self.set_mode(sc, OFFLINE, until=rng.uniform(60, 600))
            elif roll < 0.09:
                endpoint = rng.choice(ENDPOINT_TYPES)
                sc.endpoints[endpoint] = SyncStatus.OUT_OF_SYNC
                self._later(rng.uniform(60, 600), sc.name,
                            lambda sc=sc, e=endpoint: sc.endpoints.__setitem__(e, SyncStatus.IN_SYNC))

    # One chaos step in REGIONAL_ODDS takes a slice of the fleet down at once (a region losing power), so the
    # demo shows an incident (DCPORTAL_INCIDENT_MIN_SUBCLOUDS, 20 by default) now and then, not only single outages.
    REGIONAL_ODDS = 0.02

    def regional_outage(self, rng, seconds):
        """max(20, an eighth of the fleet) subclouds offline together for `seconds`; returns their names."""
        calm = [sc for sc in self.subclouds.values() if sc.name not in self.timers]
        hit = rng.sample(calm, min(len(calm), max(20, len(self.subclouds) // 8)))
        for sc in hit:
            self.set_mode(sc, OFFLINE, until=seconds)
        return [sc.name for sc in hit]

    def chaos_step(self, rng):
        """One random event of the demo's background weather: an outage (now and then a regional one), a drift, a flap."""
        if rng.random() < self.REGIONAL_ODDS:
            self.regional_outage(rng, rng.uniform(60, 150))
            return
        sc = rng.choice(list(self.subclouds.values()))
        if sc.name in self.timers:
            return
        roll = rng.random()
        if roll < 0.5:
            self.set_mode(sc, OFFLINE, until=rng.uniform(40, 120))
        elif roll < 0.85:
            endpoint = rng.choice(ENDPOINT_TYPES)
            sc.endpoints[endpoint] = SyncStatus.OUT_OF_SYNC
            self._later(rng.uniform(30, 90), sc.name, lambda: sc.endpoints.__setitem__(endpoint, SyncStatus.IN_SYNC))
        else:
            self.flap(sc, rng.uniform(20, 40))
            asyncio.get_running_loop().call_later(150, lambda: self.set_mode(sc, ONLINE))


def _json_body_error(message, status=400):
    return web.json_response({"error": message}, status=status)


def build_app(fleet):
    routes = web.RouteTableDef()

    @routes.get("/subclouds/{name}/audit")
    async def probe(request):
        sc = fleet.subclouds.get(request.match_info["name"])
        if sc is None:
            return _json_body_error("no such subcloud", 404)
        sc.probes += 1
        if sc.mode == UNREACHABLE:
            await asyncio.sleep(3600)  # cancelled when the prober gives up and disconnects
        if sc.mode != ONLINE:
            return _json_body_error("subcloud offline", 503)
        return web.json_response({"endpoints": sc.endpoints})

    @routes.get("/control")
    async def summary(request):
        return web.json_response(fleet.summary())

    @routes.get("/control/subclouds/{name}")
    async def one(request):
        sc = fleet.subclouds.get(request.match_info["name"])
        return web.json_response(sc.as_json()) if sc else _json_body_error("no such subcloud", 404)

    @routes.post("/control")
    async def control(request):
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            result = fleet.apply(body)
        except (ValueError, BadRequest) as err:
            return _json_body_error(str(err))
        log.info("control %s -> %s", body, result)
        return web.json_response(result)

    @routes.post("/receivers/{kind}")
    async def receive(request):
        receiver = fleet.receivers.get(request.match_info["kind"])
        if receiver is None:
            return _json_body_error("no such receiver", 404)
        if receiver.down:
            receiver.refused += 1
            return _json_body_error("receiver down", 503)
        try:
            body = await request.json()
        except ValueError:
            return _json_body_error("body must be JSON")
        receiver.received.append({"at": time.time(), "body": body})
        log.info("%s received %s", request.match_info["kind"], body)
        return web.json_response({"received": len(receiver.received)})

    @routes.get("/receivers/{kind}")
    async def received(request):
        receiver = fleet.receivers.get(request.match_info["kind"])
        if receiver is None:
            return _json_body_error("no such receiver", 404)
        items = receiver.received
        if "subcloud" in request.query:
            items = [i for i in items if isinstance(i["body"], dict) and i["body"].get("subcloud") == request.query["subcloud"]]
        return web.json_response({"count": len(items), "refused": receiver.refused, "received": items})

    app = web.Application()
    app.add_routes(routes)
    return app


async def serve(fleet, port, chaos_seconds=0.0, seed=7, ready=None):
    """Serve on 127.0.0.1:port (0 = any free port) until cancelled; `await ready(base_url)` once listening."""
    runner = web.AppRunner(build_app(fleet), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    if ready:
        await ready(f"http://127.0.0.1:{bound}")
    rng = random.Random(seed)
    if chaos_seconds:
        fleet.seed_weather(rng)
    try:
        while True:
            await asyncio.sleep(chaos_seconds or 3600)
            if chaos_seconds:
                fleet.chaos_step(rng)
    finally:
        await runner.cleanup()
