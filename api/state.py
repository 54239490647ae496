"""The state endpoints: validate everything, accept durably (202), let the workers apply."""

from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsService
from api.errors import error_response
from api.parsers import JSONParser
from api.schema import ERROR
from subclouds.choices import EndpointType
from subclouds.services import NotFound, get_subcloud

from . import intake, schema
from .models import Outcome, StateUpdate, UpdateKind, WorkerHeartbeat


class StateView(APIView):
    permission_classes = [IsService]
    # JSON bodies only: a form cannot carry null, booleans or the bulk's nested objects.
    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, intake.Invalid):
            return error_response(exc.status, exc.message if exc.field in exc.message else str(exc), exc.field)
        if isinstance(exc, NotFound):
            return error_response(status.HTTP_404_NOT_FOUND, str(exc), "subcloud")
        return super().handle_exception(exc)

    @staticmethod
    def accepted(kind, rows):
        count, sequence = intake.accept(kind, rows)
        return Response({"accepted": count, "sequence": sequence}, status=status.HTTP_202_ACCEPTED)


class EndpointStatusView(StateView):
    @extend_schema(summary="Accept an endpoint sync-status update (absent subcloud: every subcloud)",
                   request=schema.ENDPOINT_STATUS, responses=schema.accepted_responses())
    def post(self, request):
        ref, payload = intake.parse_endpoint_status(request.data)
        ids = [intake.resolve([ref])[ref]] if ref else intake.all_subcloud_ids()
        return self.accepted(UpdateKind.ENDPOINT, [(sid, payload) for sid in ids])


class AvailabilityView(StateView):
    @extend_schema(summary="Accept an availability update", request=schema.AVAILABILITY,
                   responses=schema.accepted_responses())
    def post(self, request):
        ref, payload = intake.parse_availability(request.data)
        return self.accepted(UpdateKind.AVAILABILITY, [(intake.resolve([ref])[ref], payload)])


class BulkView(StateView):
    @extend_schema(summary="Accept audit results: availability plus endpoint map, up to 1,000 subclouds",
                   request=schema.BULK, responses=schema.accepted_responses())
    def post(self, request):
        from django.conf import settings

        parsed = intake.parse_bulk(request.data, settings.STATE_BULK_MAX)
        refs = [ref for ref, _ in parsed]
        ids = self._resolve(refs)
        return self.accepted(UpdateKind.BULK, [(ids[ref], payload) for ref, payload in parsed])

    @staticmethod
    def _resolve(refs):
        try:
            return intake.resolve(refs)
        except intake.Invalid as err:
            if len(refs) > 1:
                missing = err.message.split("'")[1]
                err.field = f"updates[{refs.index(missing)}].subcloud"
            raise


class UpdateStatusView(StateView):
    """What the certificate monitor calls: only dc-cert."""

    parser_classes = APIView.parser_classes  # JSON or a form, as dcmanager's API takes it

    @extend_schema(summary="Set a subcloud's dc-cert sync status (certificate monitor)", request=schema.UPDATE_STATUS,
                   responses={200: schema.UPDATE_STATUS_OK, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR})
    def patch(self, request, ref):
        subcloud = get_subcloud(ref)
        body = request.data.dict() if hasattr(request.data, "dict") else request.data
        endpoint = body.get("endpoint")
        if endpoint != EndpointType.DC_CERT:
            raise intake.Invalid("endpoint", f"only {EndpointType.DC_CERT} can be updated here (got {endpoint!r})")
        try:
            _, payload = intake.parse_endpoint_status({"endpoint_type": endpoint, "sync_status": body.get("status")})
        except intake.Invalid as err:  # this body calls the status field "status"
            raise intake.Invalid("status", err.message) from None
        intake.accept(UpdateKind.ENDPOINT, [(subcloud.pk, payload)])
        return Response({"result": "OK"})


def stats():
    """What the state service has done and who is doing it (also for manage.py state_stats)."""
    from django.conf import settings

    pending = StateUpdate.objects.filter(applied_at__isnull=True)
    oldest = pending.order_by("id").values_list("accepted_at", flat=True).first()
    # Totals over the retained acceptance log, so they survive worker restarts.
    by_outcome = dict(
        StateUpdate.objects.filter(applied_at__isnull=False).values_list("outcome").annotate(n=Count("id"))
    )
    workers = []
    now = timezone.now()
    stale_after = 3 * settings.STATE_HEARTBEAT_SECONDS
    for hb in WorkerHeartbeat.objects.order_by("name"):
        age = (now - hb.beat_at).total_seconds()
        workers.append(
            {
                "name": hb.name,
                "kind": hb.kind,
                "hostname": hb.hostname,
                "pid": hb.pid,
                "started_at": hb.started_at.isoformat(),
                "last_heartbeat": hb.beat_at.isoformat(),
                "heartbeat_age_seconds": round(age, 3),
                "alive": age <= stale_after,
                "applied": hb.applied,
                "noops": hb.noops,
                "failed": hb.failed,
            }
        )
    return {
        "sequence": intake.current_sequence(),
        "pending": pending.count(),
        "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        "applied": by_outcome.get(Outcome.APPLIED, 0),
        "noops": by_outcome.get(Outcome.NOOP, 0),
        "failed": by_outcome.get(Outcome.FAILED, 0),
        "workers": workers,
    }


class StatsView(APIView):
    @extend_schema(summary="State service counters and live workers", responses={200: schema.STATS, 401: ERROR})
    def get(self, request):
        return Response(stats())
