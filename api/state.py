"""The state endpoints: validate everything, accept durably (202), let the workers apply."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsService
from accounts.roles import SERVICE, role_of
from api.parsers import JSONParser
from api.schema import ERROR
from state import intake
from state.actors import Actor
from state.kinds import Source, UpdateKind
from state.stats import stats
from subclouds.choices import EndpointType
from subclouds.errors import Refused
from subclouds.services import get_subcloud

from . import state_schema as schema


def actor(request, usual_caller):
    """The actor of a state update: the service user's calls default to the endpoint's usual caller
    (dcorch, audit, certificate monitor: they send no X-Dcportal-Source), anyone else's to "rest"."""
    return Actor.of_request(request, usual_caller if role_of(request.user) == SERVICE else None)


class StateView(APIView):
    permission_classes = [IsService]
    # JSON bodies only: a form cannot carry null, booleans or the bulk's nested objects.
    parser_classes = [JSONParser]
    usual_caller = Source.AUDIT

    def accepted(self, kind, rows):
        count, sequence = intake.accept(kind, rows, actor(self.request, self.usual_caller))
        return Response({"accepted": count, "sequence": sequence}, status=status.HTTP_202_ACCEPTED)


class EndpointStatusView(StateView):
    usual_caller = Source.DCORCH

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
        fields = [f"updates[{i}].subcloud" for i in range(len(refs))] if "updates" in request.data else None
        ids = intake.resolve(refs, fields)
        return self.accepted(UpdateKind.BULK, [(ids[ref], payload) for ref, payload in parsed])


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
            raise Refused.at("endpoint", f"only {EndpointType.DC_CERT} can be updated here (got {endpoint!r})")
        try:
            _, payload = intake.parse_endpoint_status({"endpoint_type": endpoint, "sync_status": body.get("status")})
        except Refused as err:  # this body calls the status field "status"
            raise Refused.at("status", err.errors[err.field][0]) from None
        intake.accept(UpdateKind.ENDPOINT, [(subcloud.pk, payload)], actor(request, Source.CERTMON))
        return Response({"result": "OK"})


class StatsView(APIView):
    @extend_schema(summary="State service counters and live workers", responses={200: schema.STATS, 401: ERROR})
    def get(self, request):
        return Response(stats())
