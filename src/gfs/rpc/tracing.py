"""Trace context over gRPC: a client interceptor puts `traceparent` into the call's
metadata and records a client span; a server interceptor continues the trace in
a server span. Both step aside (one boolean test) while tracing is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gfs import tracing


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _CallDetails(_Details, grpc.ClientCallDetails):  # type: ignore[misc]
    pass


class ClientTracer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        # Only calls made as part of a trace: background checks would each start one.
        if not tracing.enabled() or not trace.get_current_span().get_span_context().is_valid:
            return continuation(details, request)
        span = tracing.tracer().start_span(f"grpc {details.method}", kind=SpanKind.CLIENT)
        span.set_attribute("rpc.system", "grpc")
        span.set_attribute("rpc.method", details.method)
        carrier = tracing.inject({}, trace.set_span_in_context(span))
        metadata = [*(details.metadata or ()), *carrier.items()]
        new = _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        try:
            call = continuation(new, request)
        except Exception:
            span.end()
            raise

        def done(f: Any) -> None:
            code = f.code()
            if code is not None and code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, str(code)))
            span.end()

        call.add_done_callback(done)
        return call


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    return grpc.intercept_channel(channel, ClientTracer())


class ServerTracer(grpc.ServerInterceptor):  # type: ignore[misc]
    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or not handler.unary_unary or not tracing.enabled():
            return handler
        carrier = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        if "traceparent" not in carrier:
            return handler  # only continue traces; never start one per I/O request
        context = tracing.extract(carrier)
        inner, method = handler.unary_unary, details.method

        def traced(req: Any, ctx: grpc.ServicerContext) -> Any:
            with tracing.span(f"grpc {method}", SpanKind.SERVER, context, {"rpc.method": method}):
                return inner(req, ctx)

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
