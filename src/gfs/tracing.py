"""OpenTelemetry tracing, off unless an OTLP endpoint is given.

`setup(service, endpoint)` turns it on when `endpoint` (a daemon's
`--otlp-endpoint`) or `OTEL_EXPORTER_OTLP_ENDPOINT` is set; spans are then sent
over OTLP/HTTP (the optional dependency `gfs[otlp]`). While it is off every
helper here is a cheap no-op, so the hot paths pay one boolean test.

Context crosses processes in W3C `traceparent`: HTTP headers from the CLI to
gfsd, gRPC metadata from gfsd to the brick daemons (gfs.rpc.tracing).
No grpc here: the CLI imports this module.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind

log = logging.getLogger(__name__)

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

_provider: TracerProvider | None = None


class TracingError(Exception):
    """Tracing was asked for but cannot work; the message is one line for the user."""


def setup(service: str, endpoint: str | None = None) -> bool:
    """Trace to an OTLP/HTTP collector when an endpoint is configured; returns whether on."""
    if not (endpoint or os.environ.get(ENDPOINT_ENV) or os.environ.get(TRACES_ENDPOINT_ENV)):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as e:
        raise TracingError(
            "tracing needs the OTLP exporter: pip install 'gfs[otlp]' "
            "(opentelemetry-exporter-otlp-proto-http)"
        ) from e
    if endpoint is not None:
        if "://" not in endpoint:
            raise TracingError(f"OTLP endpoint {endpoint!r}: expected http(s)://HOST:PORT")
        # As with the environment variable, the endpoint is the collector's base URL.
        url = endpoint if endpoint.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
        use(OTLPSpanExporter(endpoint=url), service)
    else:
        use(OTLPSpanExporter(), service)  # reads the OTEL_* environment itself
    log.info("tracing on service=%s endpoint=%s", service, endpoint or "(environment)")
    return True


def use(exporter: SpanExporter, service: str, batch: bool = True) -> TracerProvider:
    """Send this process's spans to `exporter` (tests pass an in-memory one)."""
    global _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    )
    if _provider is None:
        atexit.register(shutdown)
    _provider = provider
    return provider


def shutdown() -> None:
    """Flush and stop tracing (at exit, or between tests)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def enabled() -> bool:
    return _provider is not None


def tracer() -> trace.Tracer:
    return trace.get_tracer("gfs", tracer_provider=_provider)


@contextmanager
def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span around the block while tracing is on; else nothing at all."""
    if _provider is None:
        yield None
        return
    with tracer().start_as_current_span(name, context=context, kind=kind) as s:
        for k, v in (attrs or {}).items():
            if v is not None:
                s.set_attribute(k, v)
        yield s


def inject(carrier: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`) for the current span to `carrier`."""
    propagate.inject(carrier, context=context)
    return carrier


def extract(carrier: Mapping[str, str]) -> Context:
    return propagate.extract(carrier)
