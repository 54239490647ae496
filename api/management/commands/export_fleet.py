"""`manage.py export_fleet [--format json|csv] [--output FILE]`: the fleet as `dcmanager subcloud list --detail` prints it.

The same columns the subclouds page exports (subclouds/fleetfile.py), from the API's
own JSON (representation.subclouds_json); `import_fleet` reads it back.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subclouds import fleetfile
from subclouds.models import Subcloud, SubcloudGroup
from subclouds.representation import subclouds_json


class Command(BaseCommand):
    help = "Write every subcloud as `dcmanager subcloud list --detail -f json` (or -f csv) prints it."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=fleetfile.FORMATS, default="json")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, format, output, **options):
        groups = dict(SubcloudGroup.objects.values_list("id", "name"))
        text = fleetfile.dumps(fleetfile.rows(subclouds_json(Subcloud.objects.all()), groups), format)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as err:
            raise CommandError(f"cannot write {output}: {err.strerror}") from None
        self.stderr.write(f"Fleet written to {output}")
