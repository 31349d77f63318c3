"""Prometheus metrics of one server process: requests and latency by endpoint and status, batch sizes,
queue depth. Each app has its own registry, so two servers in one process (tests) do not mix counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServeMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    def __init__(self, commit: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fmhub_requests", "HTTP requests answered", ("endpoint", "status"),
                                registry=self.registry)
        self.latency = Histogram("fmhub_request_duration_seconds", "Time from request to response",
                                 ("endpoint", "status"), buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("fmhub_batch_size", "Inputs per model batch", ("endpoint",),
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("fmhub_queue_depth", "Inputs waiting for a batch", registry=self.registry)
        self.inputs = Counter("fmhub_inputs", "Inputs run through the model", ("endpoint",), registry=self.registry)
        info = Gauge("fmhub_model_info", "The served model version", ("commit",), registry=self.registry)
        info.labels(commit=commit).set(1)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint, status=str(status)).observe(seconds)

    def batch(self, endpoint: str, size: int) -> None:
        self.batch_size.labels(endpoint=endpoint).observe(size)
        self.inputs.labels(endpoint=endpoint).inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
