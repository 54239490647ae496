"""state/bulk.py's one-statement writer: JSON columns encoded by orjson, as the json module stored them."""

import pytest
from django.db import connection
from django.utils import timezone

from state.bulk import insert_rows
from state.models import Outbox

pytestmark = pytest.mark.django_db


def test_it_stores_json_the_fast_encoder_refuses_as_before():
    """orjson refuses integers beyond 64 bits and non-string keys; those values are stored as json stored them."""
    payloads = [{"name": "sübcloud", "values": [1, None, True, 2.5]}, {"big": 10**20}, {1: "one"}]
    with connection.cursor() as cur:
        insert_rows(cur, Outbox, [{"kind": "dcorch", "subcloud_id": None, "payload": p, "created_at": timezone.now(),
                                   "attempts": 0} for p in payloads])
    stored = list(Outbox.objects.order_by("id").values_list("payload", flat=True))
    assert stored == [payloads[0], {"big": 10**20}, {"1": "one"}]
