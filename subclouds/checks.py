"""`manage.py check --database default`: rows stored before the name rules (subclouds/names.py).

The rules apply to new input only; existing rows are reported, never changed, so an
operator can rename or re-register them knowingly. Tagged `database` so it runs only
when asked to look at a database.
"""

from django.core import checks
from django.db import connections

from . import names
from .models import Subcloud, SubcloudGroup


def _bad_rows(using):
    subclouds = list(Subcloud.objects.using(using).order_by("pk").values_list("pk", "name", "region_name"))
    by_name = {name: pk for pk, name, _ in subclouds}
    for pk, name, region in subclouds:
        for problem in (names.subcloud_name_problem(name), names.region_name_problem(region)):
            if problem:
                yield f"subcloud id {pk} ({ascii(name)}): {problem}"
        if by_name.get(region, pk) != pk:
            yield f"subcloud id {pk} ({ascii(name)}): region name {ascii(region)} is the name of subcloud id {by_name[region]}"
    for pk, name in SubcloudGroup.objects.using(using).order_by("pk").values_list("pk", "name"):
        problem = names.group_name_problem(name)
        if problem:
            yield f"subcloud group id {pk} ({ascii(name)}): {problem}"


@checks.register(checks.Tags.database)
def stored_names(app_configs=None, databases=None, **kwargs):
    """W001: one warning per database listing every stored name that today's rules would refuse."""
    found = []
    for using in databases or ():
        # `migrate` runs database checks too, before the tables may exist.
        if using not in connections or Subcloud._meta.db_table not in connections[using].introspection.table_names():
            continue
        rows = list(_bad_rows(using))
        if rows:
            found.append(checks.Warning(
                f"{len(rows)} stored name(s) break the name rules:\n  " + "\n  ".join(rows),
                hint="rename the group or delete and re-register the subcloud under a valid name "
                     "(see docs/spec/domain.md, Names)",
                id="subclouds.W001",
            ))
    return found
