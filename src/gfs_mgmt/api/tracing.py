"""A server span for every REST request, continuing the caller's trace
(`traceparent` header) while tracing is on."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from gfs import tracing

UNTRACED = frozenset({"/metrics", "/v1/health"})

Scope = dict[str, Any]
Receive = Any
Send = Any


class TraceMiddleware:
    """Pure ASGI, so the span is current while the handler runs (Starlette copies the
    context into the thread pool that runs sync handlers)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Not the scrapes and health checks: they would each make a trace of their own.
        if scope["type"] != "http" or not tracing.enabled() or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = f"{scope['method']} {scope['path']}"
        with tracing.span(
            name, SpanKind.SERVER, tracing.extract(headers), {"http.method": scope["method"]}
        ) as span:
            assert span is not None

            async def send_and_note(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_and_note)


def instrument(app: Any) -> None:
    app.add_middleware(TraceMiddleware)
