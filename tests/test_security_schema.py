"""Schemathesis against the OpenAPI schema the app serves (/v1.0/schema/), in process over WSGI,
then (fewer examples) through the real server, daphne started by dcportal.server.

Every operation is called with generated valid and invalid input, with the token of
the role it is meant for (state endpoints: service; the rest: operator): no answer
may be a 5xx, and every answer must match the schema (status code, content type,
headers, body). Through daphne the server's own answers (Twisted's, daphne's, the
body limit's) are held to the same schema. Bounded: a few examples per operation.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from subclouds.models import SubcloudGroup
from tests.conftest import daphne_on_test_db

pytestmark = pytest.mark.django_db

EXAMPLES = 20
EXAMPLES_THROUGH_DAPHNE = 3
SERVICE_PATHS = ("/v1.0/state/", "/update_status")


@pytest.fixture
def tokens(client_as):
    return {role: client_as(role).token for role in ("operator", "service")}


# Loaded from the app itself at collection (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi("/v1.0/schema/", get_wsgi_application())
# The same schema, sent over HTTP to a base URL given at call time.
over_http = schemathesis.openapi.from_dict(schema.raw_schema)


@pytest.fixture(autouse=True)
def world(subcloud_factory):
    """A subcloud and a group for the operations to find; requests run inside this test's transaction."""
    group = SubcloudGroup.objects.create(name="grp")
    subcloud_factory("sc1", group_id=group)
    # As Django's test client does: a request must not close the connection holding the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# The original in-process test, kept word for word: hypothesis derives its derandomized seed from the source.
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_it_never_fails_and_always_answers_as_documented(case, tokens):
    role = "service" if any(p in case.path for p in SERVICE_PATHS) else "operator"
    # A schema-valid body may still break a rule (an unknown group, a duplicate name): 400, so no
    # positive_data_acceptance. Bodies must reject what the schema does not allow; list filters, like
    # django-filter's everywhere, take an empty value as "no filter", so GETs skip negative_data_rejection.
    excluded = [positive_data_acceptance] + ([negative_data_rejection] if case.method == "GET" else [])
    case.call_and_validate(headers={"X-Auth-Token": tokens[role]}, excluded_checks=excluded)


def role_and_excluded_checks(case):
    """The same role and checks as the in-process test."""
    role = "service" if any(p in case.path for p in SERVICE_PATHS) else "operator"
    return role, [positive_data_acceptance] + ([negative_data_rejection] if case.method == "GET" else [])


@pytest.fixture(scope="module")
def daphne(django_db_setup, tmp_path_factory):
    """One real server for the module (dcportal.server on the test database); each test commits its own world."""
    server = daphne_on_test_db(tmp_path_factory.mktemp("daphne")).start()
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@over_http.parametrize()
@settings(max_examples=EXAMPLES_THROUGH_DAPHNE, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_it_answers_as_documented_through_daphne(case, tokens, daphne):
    role, excluded = role_and_excluded_checks(case)
    case.call_and_validate(base_url=daphne.url, headers={"X-Auth-Token": tokens[role]}, excluded_checks=excluded)
