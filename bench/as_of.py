"""The fleet as of a past time and the incidents, over a week of change log: GET /v1.0/subclouds?as_of= latency.

Fills N subclouds x a week of history straight into the change log (setup, not
measured: each subcloud flips availability every few hours and changes an
endpoint now and then, a dead office of 10% of the fleet each day), then times
the API (a reader's token, the full JSON) at several past times next to the
floor: raw psycopg running the same DISTINCT ON query and reading the same
rows. The cost grows with the log rows after the requested time.
"""

import argparse
import statistics
import sys
import time

from . import harness
from .dead_office import reset_fleet


def fill_history(days, flips):
    """`flips` availability changes per subcloud per day, an endpoint change per 4, plus a daily dead office."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO state_statechange (subcloud_id, subcloud_name, changes, previous, faults_raised, faults_cleared,
                                           reason, created_at)
            SELECT s.id, s.name,
                   CASE WHEN n %% 4 = 3
                        THEN jsonb_build_object('endpoints', jsonb_build_object('platform', 'in-sync', 'identity',
                             CASE WHEN n %% 8 = 3 THEN 'out-of-sync' ELSE 'in-sync' END))
                        ELSE jsonb_build_object('availability_status', CASE WHEN n %% 2 = 0 THEN 'offline' ELSE 'online' END) END,
                   CASE WHEN n %% 4 = 3
                        THEN jsonb_build_object('endpoints', jsonb_build_object('identity',
                             CASE WHEN n %% 8 = 3 THEN 'in-sync' ELSE 'out-of-sync' END))
                        ELSE jsonb_build_object('availability_status', CASE WHEN n %% 2 = 0 THEN 'online' ELSE 'offline' END) END,
                   '[]', '[]', 'update',
                   now() - make_interval(days => %s) + (n * interval '1 day' / %s) + (s.id %% 997) * interval '7 seconds'
            FROM subclouds_subcloud s, generate_series(0, %s - 1) n
            ORDER BY 8
            """,
            [days, flips, days * flips],
        )
        rows = cur.rowcount
        cur.execute("ANALYZE state_statechange")
    return rows


def raw_floor(when):
    """The same rows through raw psycopg: the subclouds, their endpoints and the DISTINCT ON over the log."""
    import psycopg
    from django.conf import settings

    from state.asof import KEYS

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"],
                         password=db["PASSWORD"] or None, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("SELECT * FROM subclouds_subcloud WHERE created_at <= %s ORDER BY id", [when]).fetchall()
        conn.execute("SELECT subcloud_id, endpoint_type, sync_status FROM subclouds_endpointstatus").fetchall()
        conn.execute(
            """SELECT DISTINCT ON (c.subcloud_id, k.key) c.subcloud_id, k.key, c.previous->k.key, c.changes->'endpoints'
               FROM state_statechange c CROSS JOIN unnest(%s::text[]) AS k(key)
               WHERE c.id > (SELECT coalesce(max(id), 0) FROM state_statechange WHERE created_at <= %s)
                 AND c.subcloud_id IS NOT NULL AND c.changes ? k.key
               ORDER BY c.subcloud_id, k.key, c.id""",
            [KEYS, when],
        ).fetchall()
        return time.perf_counter() - start


def raw_incidents_floor():
    """The least any derivation of incidents reads: every availability change in the log, through raw psycopg."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"],
                         password=db["PASSWORD"] or None, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("SELECT id, created_at, subcloud_id, changes->>'availability_status' FROM state_statechange "
                     "WHERE changes ? 'availability_status'").fetchall()
        return time.perf_counter() - start


def cold_and_warm(call, repeat):
    """(seconds of the first call in a fresh process, median of `repeat` calls after it) of `call`."""
    import state.incidents

    state.incidents._cached = (None, [])  # what a new process, or the first load after a change, starts from
    start = time.perf_counter()
    result = call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm), result


def timed(client, path, token, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, HTTP_X_AUTH_TOKEN=token)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.content[:300]
    return statistics.median(times), response


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench as-of", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--flips", type=int, default=8, help="changes per subcloud per day")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    harness.setup_django()
    from urllib.parse import quote

    from django.test import Client
    from django.utils import timezone

    reset_fleet(args.subclouds)
    from subclouds.models import Subcloud

    Subcloud.objects.update(created_at=timezone.now() - timezone.timedelta(days=args.days + 1))
    rows = fill_history(args.days, args.flips)
    client, token = Client(HTTP_HOST="127.0.0.1"), harness.issue_token("reader")
    now = timezone.now()
    figures = [("subclouds", args.subclouds, ""), ("change-log rows (a week)", rows, "")]
    for hours in (1, 24, 24 * (args.days - 0.5)):
        when = now - timezone.timedelta(hours=hours)
        seconds, response = timed(client, f"/v1.0/subclouds?as_of={quote(when.isoformat())}", token, args.repeat)
        assert len(response.json()["subclouds"]) == args.subclouds
        floor = raw_floor(when)
        figures += [(f"as_of {hours:g} h ago: API s (median of {args.repeat})", seconds, "<= 1 s"),
                    (f"as_of {hours:g} h ago: raw psycopg floor s", floor, "floor")]
    live, _ = timed(client, "/v1.0/subclouds", token, args.repeat)
    from state.incidents import OPEN, incidents_json

    def api():
        response = client.get("/v1.0/incidents", HTTP_X_AUTH_TOKEN=token)
        assert response.status_code == 200, response.content[:300]
        return response.json()["incidents"]

    api_cold, api_warm, found = cold_and_warm(api, args.repeat)
    page_cold, page_warm, open_found = cold_and_warm(lambda: incidents_json(status=OPEN), args.repeat)
    figures += [("live list (no as_of): s", live, ""),
                ("GET /v1.0/incidents, first after a change: s", api_cold, "<= 1 s"),
                (f"GET /v1.0/incidents, same revision: s (median of {args.repeat})", api_warm, "<= 1 s"),
                ("page's open incidents, first after a change: s", page_cold, ""),
                (f"page's open incidents, same revision: s (median of {args.repeat})", page_warm, "<= 0.1 s"),
                ("incidents: raw psycopg floor (read the availability changes) s", raw_incidents_floor(), "floor"),
                ("incidents found (open)", f"{len(found)} ({len(open_found)})", "")]
    harness.report("as-of", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
