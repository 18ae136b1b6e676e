"""Prometheus metrics of one server process, in the text format GET /metrics serves.

Each app gets its own `CollectorRegistry` (not the library's global one), so several apps in one process
(tests, a benchmark) never collide. Labels are bounded: a route label is a known route path or "other".
With `uvicorn --workers N` each worker answers /metrics for itself; scrape them as separate targets or run
one worker per container (the usual way to scale this stateless service).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from toolcast.serving.interning import EventInterner

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Request latency: a prediction takes ~0.1-50 ms; slower answers are what an operator needs to see.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The counters and histograms the middleware, the routes and the batcher update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("toolcast_http_requests", "HTTP requests answered.",
                                ("method", "route", "status"), registry=r)
        self.latency = Histogram("toolcast_http_request_duration_seconds",
                                 "Time from request to the end of the response.", ("route",),
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("toolcast_errors", "Error answers by code (invalid_request, internal_error...)",
                              ("kind",), registry=r)
        self.predictions = Counter("toolcast_predictions", "Contexts answered by the predictor.", registry=r)
        self.batch_size = Histogram("toolcast_batch_size", "Contexts per predictor run.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.predictor_seconds = Histogram("toolcast_predictor_run_seconds", "Time of one predictor run.",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("toolcast_queue_depth", "Contexts waiting for the predictor.", registry=r)
        self.model_loaded = Gauge("toolcast_model_loaded", "1 once the model is loaded and serving.",
                                  registry=r)

    def watch_interner(self, interner: EventInterner) -> None:
        """Export the interner's hit and miss counts (read at scrape time: no cost per request)."""
        self.registry.register(_InternerCollector(interner))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.predictor_seconds.observe(seconds)
        self.predictions.inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _InternerCollector:
    """A custom collector: the counts live in the interner, read when /metrics is scraped."""

    def __init__(self, interner: EventInterner):
        self._interner = interner

    def collect(self):
        hits = CounterMetricFamily("toolcast_event_intern_hits",
                                   "Request events served as an object built for an earlier request.")
        hits.add_metric([], self._interner.hits)
        misses = CounterMetricFamily("toolcast_event_intern_misses", "Request events built afresh.")
        misses.add_metric([], self._interner.misses)
        return [hits, misses]
