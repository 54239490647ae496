"""Prometheus /metrics for the state service, read from PostgreSQL at scrape time.

Workers are separate processes (often on other hosts), so their counters
travel in their heartbeat rows rather than in process-local registries.
"""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.views import APIView

from state.models import WorkerHeartbeat
from state.stats import stats

from .state_schema import METRICS


class StateCollector:
    def collect(self):
        s = stats()
        yield CounterMetricFamily("dcportal_state_accepted", "Updates accepted (last sequence)", value=s["sequence"])
        yield GaugeMetricFamily("dcportal_state_pending", "Accepted updates not yet applied", value=s["pending"])
        per_worker = {
            "applied": CounterMetricFamily("dcportal_state_applied", "Updates that changed state", labels=["worker"]),
            "noops": CounterMetricFamily("dcportal_state_noop", "Updates that changed nothing", labels=["worker"]),
            "failed": CounterMetricFamily("dcportal_state_failed", "Updates that failed", labels=["worker"]),
        }
        alive = GaugeMetricFamily("dcportal_state_worker_heartbeat_age_seconds", "Age of the last heartbeat", labels=["worker"])
        latency = HistogramMetricFamily(
            "dcportal_state_apply_latency_seconds", "From acceptance to applied", labels=["worker"]
        )
        for w in s["workers"]:
            for key, family in per_worker.items():
                family.add_metric([w["name"]], w[key])
            alive.add_metric([w["name"]], w["heartbeat_age_seconds"])
        for hb in WorkerHeartbeat.objects.exclude(latency={}):
            h = hb.latency
            running, buckets = 0, []
            for bound, count in zip(h["buckets"], h["counts"]):
                running += count
                buckets.append((str(bound), running))
            latency.add_metric([hb.name], buckets, sum_value=h["sum"])
        yield from per_worker.values()
        yield alive
        yield latency


class MetricsView(APIView):
    @extend_schema(summary="Prometheus metrics of the state service", responses={(200, "text/plain"): METRICS})
    def get(self, request):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StateCollector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


metrics = MetricsView.as_view()
