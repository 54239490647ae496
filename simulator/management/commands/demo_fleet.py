"""Register a demo fleet with varied states, through the same code paths as the API."""

import random

from django.core.management.base import BaseCommand
from tqdm import tqdm

from simulator import fleet as simulator
from state import intake, operations
from state.models import UpdateKind
from state.worker import apply_batch
from subclouds.choices import ENDPOINT_TYPES, Availability, ManagementState
from subclouds.models import Subcloud, SubcloudGroup

GROUPS = [("edge-east", "Eastern edge sites"), ("edge-west", "Western edge sites"), ("labs", "Lab subclouds")]


def drain():
    while apply_batch(1000, "demo_fleet").subclouds:
        pass


class Command(BaseCommand):
    help = "Register N demo subclouds across a few groups (idempotent) and give them varied states."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200)
        parser.add_argument("--prefix", default="subcloud")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--audit-base-url", default="",
                            help="give every demo subcloud its audit URL on the subcloud simulator at this base URL")

    def handle(self, *args, count, prefix, seed, audit_base_url, **options):
        rng = random.Random(seed)
        groups = [SubcloudGroup.objects.get_or_create(name=n, defaults={"description": d})[0] for n, d in GROUPS]
        existing = set(Subcloud.objects.values_list("name", flat=True))
        if audit_base_url:
            self.point_at_simulator(audit_base_url, [f"{prefix}{i}" for i in range(1, count + 1)], existing)
        new = []
        for i in tqdm(range(1, count + 1), desc="registering demo fleet", unit="subcloud", disable=None):
            name = f"{prefix}{i}"
            if name in existing:
                continue
            new.append(operations.register_subcloud({
                "name": name,
                "description": f"Demo site {i}",
                "location": rng.choice(["Ottawa", "Kanata", "Montreal", "Toronto", "Vancouver", "Calgary"]),
                "group_id": rng.choice(groups),
                "software_version": "24.09",
                "management_subnet": f"10.{i // 250}.{i % 250}.0/24",
                "audit_url": simulator.audit_url(audit_base_url, name) if audit_base_url else None,
            }))
        if not new:
            self.stderr.write(f"demo fleet: all {count} subclouds already registered")
            return
        online = [s for s in new if rng.random() < 0.85]
        intake.accept(UpdateKind.AVAILABILITY, [
            (s.pk, {"availability_status": Availability.ONLINE, "update_state_only": False, "audit_fail_count": 0})
            for s in online
        ])
        drain()
        managed = [s for s in online if rng.random() < 0.8]
        for s in managed:
            operations.update_subcloud(s.pk, management_state=ManagementState.MANAGED)
        intake.accept(UpdateKind.BULK, [
            (s.pk, {"availability": None, "endpoints": {
                e: ("out-of-sync" if rng.random() < 0.04 else "in-sync") for e in ENDPOINT_TYPES
            }})
            for s in managed
        ])
        offline = [s for s in online if s not in managed and rng.random() < 0.3]
        intake.accept(UpdateKind.AVAILABILITY, [
            (s.pk, {"availability_status": Availability.OFFLINE, "update_state_only": False, "audit_fail_count": 2})
            for s in offline
        ])
        drain()
        self.stderr.write(f"demo fleet: registered {len(new)}, {len(managed)} managed, "
                          f"{len(online) - len(offline)} online")

    @staticmethod
    def point_at_simulator(base_url, names, existing):
        """Already registered demo subclouds get their simulator audit URL too."""
        for name in sorted(existing.intersection(names)):
            Subcloud.objects.filter(name=name).update(audit_url=simulator.audit_url(base_url, name))
