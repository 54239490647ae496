"""`manage.py simulate_control ACTION ...`: drive a running subcloud simulator (see simulator/fleet.py)."""

import json

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from simulator.fleet import RECEIVER_KINDS
from subclouds.models import Subcloud

ACTIONS = ("online", "offline", "unreachable", "drift", "sync", "flap", "dead-office",
           "receiver-down", "receiver-up", "receiver-reset", "status", "received")


class Command(BaseCommand):
    help = "Take simulated subclouds (or a group, or all) offline/online, drift endpoints, flap, dead-office; show counts."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("--url", default=settings.SIMULATOR_URL,
                            help="the simulator (default $DCPORTAL_SIMULATOR_URL or http://127.0.0.1:8120)")
        parser.add_argument("--subcloud", action="append", default=[], help="a subcloud name (repeatable)")
        parser.add_argument("--group", help="every subcloud of this dcportal subcloud group")
        parser.add_argument("--all", action="store_true", help="every simulated subcloud")
        parser.add_argument("--endpoint", help="drift / sync: the endpoint type")
        parser.add_argument("--status", help="drift: the sync status (default out-of-sync)")
        parser.add_argument("--period", type=float, help="flap: seconds between flips")
        parser.add_argument("--seconds", type=float, help="offline / unreachable / dead-office: back online after this long")
        parser.add_argument("--receiver", choices=RECEIVER_KINDS, default=RECEIVER_KINDS[0])

    def handle(self, *args, action, url, **options):
        try:
            with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
                if action == "status":
                    response = client.get("/control")
                elif action == "received":
                    response = client.get(f"/receivers/{options['receiver']}")
                else:
                    response = client.post("/control", json=self.body(action, options))
        except httpx.HTTPError as err:
            raise CommandError(f"simulator at {url} did not answer: {err}") from err
        if response.status_code != 200:
            raise CommandError(f"simulator refused: {response.status_code} {response.text}")
        self.stdout.write(json.dumps(response.json(), indent=2))

    @staticmethod
    def body(action, options):
        body = {"action": action}
        names = list(options["subcloud"])
        if options["group"]:
            members = list(Subcloud.objects.filter(group__name=options["group"]).values_list("name", flat=True))
            if not members:
                raise CommandError(f"group {options['group']!r} has no subclouds")
            names += members
        if options["all"]:
            body["all"] = True
        elif names:
            body["subclouds"] = names
        elif action not in ("dead-office",) and not action.startswith("receiver"):
            raise CommandError("say which subclouds: --subcloud NAME, --group GROUP or --all")
        for key in ("endpoint", "status", "period", "seconds"):
            if options[key] is not None:
                body[key] = options[key]
        if action.startswith("receiver"):
            body["receiver"] = options["receiver"]
        return body
