"""The operator pages: thin views; the data arrives over /ws/status/ and is rendered in the browser.

Pages are for every role (readers see everything); the manage / unmanage
buttons are only rendered for operators, and the REST API they call refuses
anyone else anyway.
"""

from collections import Counter
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from accounts.roles import OPERATOR, SUPERUSER, role_of
from state import asof, events
from state.incidents import OPEN, incidents_json
from subclouds import services
from subclouds.errors import NotFound, Refused
from subclouds.models import Fault, SubcloudGroup
from subclouds.representation import subcloud_detail_json

from . import history
from .vocabulary import vocabulary

# Detail-page fields, in dcmanager's order (name is the title; endpoints have their own table).
SHOWN_FIELDS = (
    "id", "description", "location", "group_id", "software-version", "availability-status", "management-state",
    "deploy-status", "sync_status", "error-description", "region-name", "openstack-installed", "audit-fail-count",
    "first-identity-sync-complete", "management-subnet", "management-start-ip", "management-end-ip",
    "management-gateway-ip", "systemcontroller-gateway-ip", "audit-url", "created-at", "updated-at",
)

# Fields that are times: shown as <time> and formatted in the browser like every other time.
TIME_FIELDS = {"created-at": "created_at", "updated-at": "updated_at"}


def page(view):
    """Logged in, and holding a role; outsiders get a 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        role = role_of(request.user)
        if role is None:
            return render(request, "portal/403.html", status=403)
        request.role = role
        return view(request, *args, **kwargs)

    return wrapper


def _context(request, active, **extra):
    return {
        "retention_start": asof.retention_start(),
        "active": active,
        "role": request.role,
        "can_operate": request.role in (OPERATOR, SUPERUSER),
        "groups": {g.id: g.name for g in SubcloudGroup.objects.order_by("id")},
        **extra,
    }


def _overview_cards():
    """(title, filter name, page, statuses) of the overview's count cards; the per-group table has the same columns."""
    words = vocabulary()
    severities = [c for c in words["severity"]["choices"] if c["value"] in words["headline_severities"]]
    return [
        ("Availability", "availability", "portal:subclouds", words["availability"]["choices"]),
        ("Management", "management", "portal:subclouds", words["management"]["choices"]),
        ("Sync", "sync", "portal:subclouds", words["sync"]["choices"]),
        ("Active alarms", "severity", "portal:alarms", severities),
    ]


@page
def overview(request):
    return render(
        request,
        "portal/overview.html",
        _context(
            request, "overview", cards=_overview_cards(), availability=history.availability_history(),
            open_incidents=incidents_json(status=OPEN),
            timeline=asof.online_counts(asof.retention_start(), timezone.now()),
        ),
    )


@page
def subcloud_list(request):
    return render(request, "portal/subclouds.html", _context(request, "subclouds"))


def _shown(value):
    """A field value as the page's script writes it too (JSON spelling), so live updates compare equal."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@page
def subcloud_detail(request, name):
    try:
        subcloud = services.get_subcloud(name)
    except NotFound:
        return render(request, "portal/404.html", _context(request, "subclouds", missing=name), status=404)
    data = subcloud_detail_json(subcloud)
    groups = dict(SubcloudGroup.objects.values_list("id", "name"))
    fields = [
        (key, _shown(groups.get(value, value) if key == "group_id" else value), getattr(subcloud, TIME_FIELDS.get(key, ""), None))
        for key, value in data.items()
        if key in SHOWN_FIELDS
    ]
    return render(
        request,
        "portal/subcloud.html",
        _context(
            request,
            "subclouds",
            subcloud=subcloud,
            data=data,
            fields=fields,
            faults=Fault.objects.filter(subcloud=subcloud, cleared_at__isnull=True).order_by("-raised_at"),
            history=history.subcloud_history(subcloud.pk),
        ),
    )


@page
def subcloud_history(request, name):
    """The history list alone: the detail page reloads it when the feed reports a change."""
    try:
        subcloud = services.get_subcloud(name)
    except NotFound:
        return render(request, "portal/404.html", _context(request, "subclouds", missing=name), status=404)
    return render(request, "portal/_history.html", {"history": history.subcloud_history(subcloud.pk)})


@page
def group_list(request):
    """Groups with their subcloud counts; operators get the create / edit / delete forms (static/portal/groups.js)."""
    groups = SubcloudGroup.objects.annotate(subcloud_count=Count("subclouds")).order_by("id")
    return render(request, "portal/groups.html", _context(request, "groups", group_rows=groups))


@page
def alarms(request):
    """The alarms, and above them the open incidents with the active alarms of their subclouds (one query)."""
    open_incidents = incidents_json(status=OPEN)
    active = Counter(
        Fault.objects.filter(cleared_at__isnull=True, subcloud_name__in={n for i in open_incidents for n in i["subclouds"]})
        .values_list("subcloud_name", flat=True)
    )
    for incident in open_incidents:
        incident["alarms"] = sum(active[name] for name in incident["subclouds"])
    return render(request, "portal/alarms.html", _context(request, "alarms", incidents=open_incidents))


@page
def events_page(request):
    """The fleet-wide events: filters in the query string (a GET form: bookmarkable), a page at a time, newest first."""
    params = {k: v for k, v in request.GET.items() if v.strip()}
    try:
        entries, cursor = history.fleet_events(events.parse(params))
        error = None
    except Refused as refused:
        entries, cursor, error = [], None, refused
    older = None
    if cursor is not None:
        older = request.GET.copy()
        older["before"] = cursor
        older = older.urlencode()
    return render(
        request,
        "portal/events.html",
        _context(request, "events", entries=entries, params=params, older=older, error=error),
        status=400 if error else 200,
    )
