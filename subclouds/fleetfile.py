"""The fleet as `dcmanager subcloud list` prints it (`-f json` or `-f csv`): columns, writing, reading, an import plan.

The columns are the upstream client's (dcmanagerclient/commands/v1/subcloud_manager.py:
`detail_list_format` for `--detail`, `basic_format` without it, whose "deploy status"
style names are read as "deploy_status"), plus two of dcportal's at the end, so an
export imports back without loss: `region_name` (what state updates address) and
`group_name` (group ids differ between systems). Written by `export_fleet` and the
subclouds page's export (static/portal/subclouds.js, columns from portal/vocabulary.py);
read by `import_fleet`, which validates every row before registering any.
"""

import csv
import io
import json
from dataclasses import dataclass, field

from . import names, services
from .errors import Refused
from .inputs import RegisterSubcloud, normalise
from .models import Subcloud, SubcloudGroup

GROUP_NAME = "group_name"
# (column, key of the API's subcloud JSON; None: not kept by dcportal, always null)
COLUMNS = (
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
    ("location", "location"),
    ("software_version", "software-version"),
    ("management", "management-state"),
    ("availability", "availability-status"),
    ("deploy_status", "deploy-status"),
    ("sync", "sync_status"),
    ("management_subnet", "management-subnet"),
    ("management_start_ip", "management-start-ip"),
    ("management_end_ip", "management-end-ip"),
    ("management_gateway_ip", "management-gateway-ip"),
    ("systemcontroller_gateway_ip", "systemcontroller-gateway-ip"),
    ("group_id", "group_id"),
    ("peer_group_id", None),
    ("created_at", "created-at"),
    ("updated_at", "updated-at"),
    ("backup_status", None),
    ("backup_datetime", None),
    ("prestage_status", None),
    ("prestage_versions", None),
    ("region_name", "region-name"),
    (GROUP_NAME, None),
)
COLUMN_NAMES = tuple(c for c, _ in COLUMNS)
# Columns an import registers from (the model field of each); the others are live state or the other system's.
REGISTERED = {
    "description": "description",
    "location": "location",
    "software_version": "software_version",
    "management_subnet": "management_subnet",
    "management_start_ip": "management_start_ip",
    "management_end_ip": "management_end_ip",
    "management_gateway_ip": "management_gateway_ip",
    "systemcontroller_gateway_ip": "systemcontroller_gateway_ip",
    "region_name": "region_name",
}
FORMATS = ("json", "csv")
MAX_PROBLEMS_SHOWN = 20


class BadFile(Exception):
    """The file cannot be imported as it stands; nothing was changed."""


# -- writing ------------------------------------------------------------------------


def rows(subclouds, group_names):
    """Rows (column -> value) of subclouds as the API lists them (representation.subclouds_json)."""
    return [
        {column: (group_names.get(s["group_id"]) if column == GROUP_NAME else s[key] if key else None)
         for column, key in COLUMNS}
        for s in subclouds
    ]


def dumps(table, fmt):
    """The rows as `-f json` (a list of objects) or `-f csv` (a header, then a line per row; null is empty)."""
    if fmt == "json":
        return json.dumps(table, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMN_NAMES)
    for row in table:
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMN_NAMES])
    return out.getvalue()


# -- reading ------------------------------------------------------------------------


def _column(name):
    return str(name).strip().replace(" ", "_")


def loads(text, fmt):
    """Rows (column -> text or None) of a json or csv file; BadFile for anything else."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise BadFile(f"not JSON: {err}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadFile("a JSON list of objects is expected (the output of `dcmanager subcloud list -f json`)")
        table = []
        for i, row in enumerate(data, 1):
            for key, value in row.items():
                if isinstance(value, (dict, list)):
                    raise BadFile(f"row {i}: {key} must be a single value")
            table.append({_column(k): None if v is None else str(v) for k, v in row.items()})
    elif fmt == "csv":
        reader = csv.reader(io.StringIO(text))
        try:
            lines = list(reader)
        except csv.Error as err:
            raise BadFile(f"not CSV: {err}") from None
        if not lines:
            raise BadFile("the file is empty (a CSV file starts with a header line)")
        header = [_column(c) for c in lines[0]]
        table = []
        for i, line in enumerate(lines[1:], 1):
            if not line:
                continue
            if len(line) != len(header):
                raise BadFile(f"row {i}: {len(line)} values for {len(header)} columns")
            table.append({c: (v if v != "" else None) for c, v in zip(header, line)})
    else:
        raise BadFile(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    unknown = sorted({c for row in table for c in row} - set(COLUMN_NAMES))
    if unknown:
        raise BadFile(f"unknown column {unknown[0]!r} (the columns of `dcmanager subcloud list`: {', '.join(COLUMN_NAMES)})")
    # With no subcloud, the client prints one row of "<none>".
    return [row for row in table if not all(v == "<none>" for v in row.values())]


# -- the import plan ----------------------------------------------------------------


@dataclass
class Plan:
    register: list = field(default_factory=list)  # validated RegisterSubcloud data; group_id: a group or a name to create
    new_groups: list = field(default_factory=list)
    present: int = 0
    differences: list = field(default_factory=list)  # (subcloud, column, in the file, in dcportal)
    problems: list = field(default_factory=list)


def _messages(errors, prefix=""):
    if isinstance(errors, dict):
        return [m for key, value in errors.items() for m in _messages(value, f"{key}: " if key != "non_field_errors" else "")]
    return [f"{prefix}{m}" for m in errors]


def plan(table, progress=iter):
    """What importing `table` would do, checking every row first: the import registers only from a plan without problems.

    `progress` wraps the rows (the command's progress bar: checking is the part that grows with the file)."""
    result = Plan()
    groups = {g.name: g for g in SubcloudGroup.objects.all()}
    group_ids = {str(g.pk): g for g in groups.values()}
    existing = {s.name: s for s in Subcloud.objects.select_related("group")}
    taken = {s.region_name: s.name for s in existing.values()}  # names and region names are one namespace
    taken.update({name: name for name in existing})
    seen = {}
    for i, row in enumerate(progress(table), 1):
        name = row.get("name")
        where = f"row {i}" + (f" ({name})" if name else "")
        if not name:
            result.problems.append(f"{where}: name is required")
            continue
        if name in existing:
            result.present += 1
            _compare(result, existing[name], row)
            continue
        data = {"name": name, **{c: row[c] for c in REGISTERED if row.get(c) is not None}}
        serializer = RegisterSubcloud(data=normalise(data))
        if not serializer.is_valid():
            result.problems += [f"{where}: {m}" for m in _messages(serializer.errors)]
            continue
        data = dict(serializer.validated_data)
        for key in ("name", "region_name"):
            value = data.get(key)
            if value is None:
                continue
            clash = taken.get(value) or seen.get(value)
            if clash is not None:
                result.problems.append(f"{where}: {key} {value!r} is already the name or region name of {clash!r}")
        for key in ("name", "region_name"):
            if data.get(key) is not None:
                seen[data[key]] = name
        group = _group(row, groups, group_ids, result, where)
        if group is not None:
            data["group_id"] = group
            result.register.append(data)
    return result


def _group(row, groups, group_ids, result, where):
    """The row's group (an existing SubcloudGroup or the name of one to create), or None after a problem."""
    if row.get(GROUP_NAME):
        name = row[GROUP_NAME]
        if name in groups:
            return groups[name]
        problem = names.group_name_problem(name)
        try:
            if not problem:
                services.check_group_name_free(name)  # create_group's own check: reserved spellings of Default
        except Refused as refusal:
            problem = refusal.message
        if problem:
            result.problems.append(f"{where}: {GROUP_NAME}: {problem}")
            return None
        if name not in result.new_groups:
            result.new_groups.append(name)
        return name
    if row.get("group_id"):
        if row["group_id"] in group_ids:
            return group_ids[row["group_id"]]
        result.problems.append(f"{where}: group_id {row['group_id']} is no group here (add a group_name column, "
                               "or create the group first)")
        return None
    return group_ids["1"]


def _compare(result, subcloud, row):
    for column, attr in REGISTERED.items():
        if column in row and (row[column] or None) != (getattr(subcloud, attr) or None):
            result.differences.append((subcloud.name, column, row[column], getattr(subcloud, attr)))
    if row.get(GROUP_NAME) and row[GROUP_NAME] != subcloud.group.name:
        result.differences.append((subcloud.name, GROUP_NAME, row[GROUP_NAME], subcloud.group.name))
