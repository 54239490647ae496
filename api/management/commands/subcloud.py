"""`manage.py subcloud list|show|add|add-many|manage|unmanage|delete|delete-many`: /v1.0/subclouds for people on the controller.

No token needed: whoever can run manage.py is trusted. Everything goes through
the API's own code: filters (filtersets.py), validation (inputs.py), rules
(services.py) and JSON (representation.py), so a refusal has the API's message
and `--json` prints the API's body.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from state import operations
from state.actors import Actor
from subclouds import services
from subclouds.choices import Availability, DeployStatus, ManagementState, SyncStatus
from subclouds.filtersets import filter_subclouds
from subclouds.inputs import BulkAction, RegisterSubcloud, RegisterSubclouds, UpdateSubcloud, validated
from subclouds.models import Subcloud, SubcloudGroup
from subclouds.representation import subcloud_detail_json, subclouds_json

from ..output import add_json_option, fields, refusals, table, write

# `subcloud add` option -> the key an API client sends (inputs.normalise accepts both spellings).
REGISTER_OPTIONS = {
    "name": "name",
    "description": "description",
    "location": "location",
    "group": "group_id",
    "region_name": "region_name",
    "software_version": "software-version",
    "audit_url": "audit-url",
    "management_subnet": "management-subnet",
    "management_start_ip": "management-start-ip",
    "management_end_ip": "management-end-ip",
    "management_gateway_ip": "management-gateway-ip",
    "systemcontroller_gateway_ip": "systemcontroller-gateway-ip",
}


def one(subcloud):
    """The API's object for GET /v1.0/subclouds/{ref}."""
    return subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0]


def subcloud_text(data):
    """FIELD / VALUE rows as `dcmanager subcloud show` prints them: the JSON keys, then one row per endpoint."""
    pairs = [(key, value) for key, value in data.items() if key != "endpoint_sync_status"]
    pairs += [(f"{e['endpoint_type']}_sync_status", e["sync_status"]) for e in data["endpoint_sync_status"]]
    return fields(pairs)


def choices_help(choices):
    return "one of " + ", ".join(choices.values)


class Command(BaseCommand):
    help = "List, show, register, manage, unmanage or delete subclouds (the /v1.0/subclouds API without a token)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = actions.add_parser("list", help="list subclouds, with the API's filters")
        p.add_argument("--availability", help=choices_help(Availability))
        p.add_argument("--management", help=choices_help(ManagementState))
        p.add_argument("--deploy-status", help=f"e.g. {DeployStatus.COMPLETE}")
        p.add_argument("--group", help="group id or name")
        p.add_argument("--sync-status", help=choices_help(SyncStatus))
        p.add_argument("--name", help="substring of the name (case-insensitive)")
        add_json_option(p)

        p = actions.add_parser("show", help="show one subcloud")
        p.add_argument("ref", help="id, name or region name")
        p.add_argument("--detail", action="store_true", help="the /detail object (a few more keys)")
        add_json_option(p)

        p = actions.add_parser("add", help="register an existing subcloud (unmanaged, offline)")
        p.add_argument("--name", help="unique name (required)")
        p.add_argument("--description")
        p.add_argument("--location")
        p.add_argument("--group", help="group id or name (default: Default)")
        p.add_argument("--region-name", help="default: 32 random hex characters")
        p.add_argument("--software-version")
        p.add_argument("--audit-url", help="what the audit probes; without it only the state endpoints set its state")
        p.add_argument("--management-subnet")
        p.add_argument("--management-start-ip")
        p.add_argument("--management-end-ip")
        p.add_argument("--management-gateway-ip")
        p.add_argument("--systemcontroller-gateway-ip")
        add_json_option(p)

        p = actions.add_parser("add-many", help="register many subclouds at once, all or none (the bulk API)")
        p.add_argument("file", help='JSON: the body of POST /v1.0/subcloud-bulk-register ({"subclouds": [...]}) or its list')
        add_json_option(p)

        p = actions.add_parser("manage", help="manage a subcloud (it must be online and complete unless --force)")
        p.add_argument("ref", help="id, name or region name")
        p.add_argument("--force", action="store_true", help="skip the online / deploy-status checks")
        add_json_option(p)

        p = actions.add_parser("unmanage", help="unmanage a subcloud")
        p.add_argument("ref", help="id, name or region name")
        add_json_option(p)

        p = actions.add_parser("delete", help="delete an unmanaged subcloud")
        p.add_argument("ref", help="id, name or region name")
        add_json_option(p)

        p = actions.add_parser("delete-many", help="delete many unmanaged subclouds at once (a result for each)")
        p.add_argument("refs", nargs="+", metavar="REF", help="id, name or region name")
        add_json_option(p)

    def handle(self, *args, action, **options):
        with refusals():
            getattr(self, f"do_{action.replace('-', '_')}")(options)

    def do_list(self, options):
        params = {
            "availability-status": options["availability"],
            "management-state": options["management"],
            "deploy-status": options["deploy_status"],
            "sync_status": options["sync_status"],
            "name": options["name"],
        }
        if options["group"] is not None:
            params["group_id"] = services.get_group(options["group"]).pk
        queryset, sync_status = filter_subclouds({k: v for k, v in params.items() if v is not None})
        data = {"subclouds": subclouds_json(queryset, sync_status=sync_status)}
        groups = dict(SubcloudGroup.objects.values_list("id", "name"))
        columns = [
            ("id", lambda s: s["id"]),
            ("name", lambda s: s["name"]),
            ("management", lambda s: s["management-state"]),
            ("availability", lambda s: s["availability-status"]),
            ("deploy status", lambda s: s["deploy-status"]),
            ("sync", lambda s: s["sync_status"]),
            ("group", lambda s: groups.get(s["group_id"], s["group_id"])),
            ("software version", lambda s: s["software-version"]),
        ]
        write(self, options, data, lambda: table(data["subclouds"], columns))

    def do_show(self, options):
        subcloud = services.get_subcloud(options["ref"])
        data = subcloud_detail_json(subcloud) if options["detail"] else one(subcloud)
        write(self, options, data, lambda: subcloud_text(data))

    def do_add(self, options):
        data = {key: options[opt] for opt, key in REGISTER_OPTIONS.items() if options[opt] is not None}
        subcloud = operations.register_subcloud(validated(RegisterSubcloud, data), Actor.command())
        data = one(subcloud)
        write(self, options, data, lambda: subcloud_text(data))

    def do_manage(self, options):
        extra = {"force": True} if options["force"] else {}
        self._set_management(options, {"management-state": ManagementState.MANAGED, **extra})

    def do_unmanage(self, options):
        self._set_management(options, {"management-state": ManagementState.UNMANAGED})

    def _set_management(self, options, body):
        subcloud = services.get_subcloud(options["ref"])
        operations.update(subcloud, validated(UpdateSubcloud, body), Actor.command())
        data = one(subcloud)
        write(self, options, data, lambda: subcloud_text(data))

    def do_delete(self, options):
        subcloud = services.get_subcloud(options["ref"])
        operations.delete_subcloud(subcloud.pk, Actor.command())
        write(self, options, {}, lambda: f"Subcloud {subcloud.name} (id {subcloud.pk}) deleted")

    def do_add_many(self, options):
        try:
            body = json.loads(Path(options["file"]).read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError) as err:
            raise CommandError(f"cannot read {options['file']} as JSON: {err}; nothing changed") from None
        items = validated(RegisterSubclouds, {"subclouds": body} if isinstance(body, list) else body)["subclouds"]
        made = operations.register_subclouds(items, Actor.command(), label=lambda i, key: f"subclouds[{i}].{key}")
        data = {"subclouds": subclouds_json(Subcloud.objects.filter(pk__in=[s.pk for s in made]))}
        write(self, options, data, lambda: f"Registered {len(made)} subcloud(s)")

    def do_delete_many(self, options):
        result = operations.bulk_action(validated(BulkAction, {"action": "delete", "subclouds": options["refs"]}),
                                        Actor.command())
        columns = [("subcloud", lambda r: r["subcloud"]), ("status", lambda r: r["status"]),
                   ("error", lambda r: r["error_message"])]
        write(self, options, result, lambda: table(result["results"], columns))
        if result["refused"]:
            raise CommandError(f"{result['refused']} of {len(result['results'])} refused; the others deleted")
