"""`manage.py simulate_subclouds --count N --port P [--register]`: serve N fake subclouds on 127.0.0.1."""

import asyncio
import contextlib
import signal

from django.core.management.base import BaseCommand
from django.db import transaction

from simulator import fleet as simulator
from state import operations
from subclouds.models import Subcloud


class Command(BaseCommand):
    help = "Serve N fake subclouds (audit URLs, control API, fake dcorch/certmon receiver) on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--port", type=int, default=8120, help="0 picks a free port (printed on stdout)")
        parser.add_argument("--prefix", default="subcloud", help="subclouds are named <prefix>1 .. <prefix>N")
        parser.add_argument("--register", action="store_true",
                            help="register the subclouds with dcportal (existing ones get their audit URL)")
        parser.add_argument("--chaos", type=float, default=0.0, metavar="SECONDS",
                            help="a random outage, drift or flap every SECONDS (the demo's weather); 0 = none")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, count, port, prefix, register, chaos, seed, **options):
        names = [f"{prefix}{i}" for i in range(1, count + 1)]
        fleet = simulator.Fleet(names)

        def announce(base_url):
            if register:
                self.register(names, base_url)
            self.stdout.write(f"simulator listening on {base_url} ({count} subclouds)")
            self.stdout.flush()

        asyncio.run(self.serve(fleet, port, chaos, seed, announce))

    async def serve(self, fleet, port, chaos, seed, announce):
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)

        async def ready(base_url):
            # The ORM is synchronous: registering runs on a thread, before any probe can arrive.
            await loop.run_in_executor(None, announce, base_url)

        with contextlib.suppress(asyncio.CancelledError):
            await simulator.serve(fleet, port, chaos_seconds=chaos, seed=seed, ready=ready)

    def register(self, names, base_url):
        existing = set(Subcloud.objects.filter(name__in=names).values_list("name", flat=True))
        with transaction.atomic():
            for name in names:
                url = simulator.audit_url(base_url, name)
                if name in existing:
                    Subcloud.objects.filter(name=name).update(audit_url=url)
                else:
                    operations.register_subcloud({"name": name, "audit_url": url})
        self.stderr.write(f"registered {len(names) - len(existing)} subclouds, re-pointed {len(existing)}")
