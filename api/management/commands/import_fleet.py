"""`manage.py import_fleet FILE [--format json|csv] [--dry-run]`: register what an existing system controller lists.

FILE is the output of `dcmanager subcloud list -f json` (or `-f csv`, with or without
--detail) or of `export_fleet`. Every row is checked first (subclouds/fleetfile.py
plan: RegisterSubcloud's validation, the one namespace of names and region names,
groups); a single problem stops the import before anything is written. Then missing
groups are created (services.create_group) and missing subclouds registered
(operations.register_subclouds, the bulk API's code: one statement per table, 5,000
in seconds), all in one transaction: all or nothing. Subclouds already here are compared and their differences reported, never
changed, so a second run changes nothing. They register unmanaged and offline, as the
API registers: management and availability are live state (the audit finds it).
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from state import operations
from subclouds import fleetfile, services
from subclouds.inputs import GroupInput, validated

from ..output import printable, refusals, table

MAX_FILE_BYTES = 64 * 1024 * 1024


class Command(BaseCommand):
    help = "Register the subclouds listed by `dcmanager subcloud list -f json|csv` that are missing; report differences."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", choices=fleetfile.FORMATS, help="default: from the file name, else json")
        parser.add_argument("--dry-run", action="store_true", help="check and report only; change nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def handle(self, *args, file, format, dry_run, no_progress, **options):
        path = Path(file)
        fmt = format or ("csv" if path.suffix.lower() == ".csv" else "json")
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as err:
            raise CommandError(f"cannot read {file}: {err.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise CommandError(f"{file}: larger than {MAX_FILE_BYTES} bytes; nothing changed")
        try:
            rows = fleetfile.loads(raw.decode("utf-8-sig"), fmt)
            plan = fleetfile.plan(rows, lambda rows: tqdm(rows, desc="checking", unit=" rows", file=self.stderr,
                                                          disable=no_progress, mininterval=0.2))
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text; nothing changed") from None
        except fleetfile.BadFile as err:
            raise CommandError(f"{file}: {printable(str(err))}; nothing changed") from None
        if plan.problems:
            shown = plan.problems[: fleetfile.MAX_PROBLEMS_SHOWN]
            more = len(plan.problems) - len(shown)
            raise CommandError(
                f"{file}: {len(plan.problems)} problem(s); nothing changed\n"
                + "\n".join(f"  {printable(p)}" for p in shown)
                + (f"\n  ... and {more} more" if more else "")
            )
        if plan.differences:
            self.stdout.write(f"{len(plan.differences)} difference(s) in subclouds already here (not changed):")
            columns = [("subcloud", lambda d: d[0]), ("column", lambda d: d[1]), ("in file", lambda d: d[2]),
                       ("in dcportal", lambda d: d[3])]
            self.stdout.write(table(plan.differences, columns))
        counts = f"{len(plan.register)} subcloud(s) and {len(plan.new_groups)} group(s)"
        if dry_run:
            self.stdout.write(f"Dry run: would register {counts}; {plan.present} already here; nothing changed.")
            for data in plan.register:
                self.stdout.write(f"  would register {printable(data['name'])}")
            return
        with refusals(), transaction.atomic():  # all or nothing: a registration refused now undoes the others
            created = {name: services.create_group(validated(GroupInput, {"name": name})) for name in plan.new_groups}
            operations.register_subclouds([{**data, "group_id": created.get(data["group_id"], data["group_id"])}
                                           for data in plan.register])
        self.stdout.write(f"Registered {counts}; {plan.present} already here.")
