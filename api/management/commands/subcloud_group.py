"""`manage.py subcloud_group list|add|delete`: /v1.0/subcloud-groups for people on the controller.

Same validation (inputs.GroupInput), rules (services.py: Default cannot be
deleted; a deleted group's subclouds move to Default) and JSON as the API.
"""

from django.core.management.base import BaseCommand

from subclouds import services
from subclouds.choices import UpdateApplyType
from subclouds.inputs import GroupInput, validated
from subclouds.models import SubcloudGroup
from subclouds.representation import group_json

from ..output import add_json_option, fields, refusals, table, write


class Command(BaseCommand):
    help = "List, create or delete subcloud groups (the /v1.0/subcloud-groups API without a token)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = actions.add_parser("list", help="list subcloud groups")
        add_json_option(p)

        p = actions.add_parser("add", help="create a subcloud group")
        p.add_argument("--name", help="unique name (required)")
        p.add_argument("--description")
        p.add_argument("--update-apply-type", help="one of " + ", ".join(UpdateApplyType.values))
        p.add_argument("--max-parallel-subclouds", help="1..5000")
        add_json_option(p)

        p = actions.add_parser("delete", help="delete a group (not Default); its subclouds move to Default")
        p.add_argument("ref", help="id or name")
        add_json_option(p)

    def handle(self, *args, action, **options):
        with refusals():
            getattr(self, f"do_{action}")(options)

    def do_list(self, options):
        data = {"subcloud_groups": [group_json(g) for g in SubcloudGroup.objects.order_by("id")]}
        columns = [
            ("id", lambda g: g["id"]),
            ("name", lambda g: g["name"]),
            ("description", lambda g: g["description"]),
            ("update apply type", lambda g: g["update_apply_type"]),
            ("max parallel subclouds", lambda g: g["max_parallel_subclouds"]),
        ]
        write(self, options, data, lambda: table(data["subcloud_groups"], columns))

    def do_add(self, options):
        body = {
            key: options[key]
            for key in ("name", "description", "update_apply_type", "max_parallel_subclouds")
            if options[key] is not None
        }
        data = group_json(services.create_group(validated(GroupInput, body)))
        write(self, options, data, lambda: fields(data.items()))

    def do_delete(self, options):
        group = services.get_group(options["ref"])
        name, pk = group.name, group.pk
        services.delete_group(group)
        write(self, options, {}, lambda: f"Subcloud group {name} (id {pk}) deleted; its subclouds moved to Default")
