"""OpenTelemetry set-up: traces for FastAPI, httpx and SQLAlchemy.

Nothing is exported by default. ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns on the OTLP/HTTP
exporter; ``LPR_OTEL_CONSOLE=true`` prints spans to the console. The httpx
instrumentation injects W3C trace context into service-to-service calls and the FastAPI
instrumentation extracts it, so one trace follows a read through every service.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

_provider: TracerProvider | None = None


def setup_tracing(service_name: str, *, otlp_endpoint: str | None, console: bool) -> TracerProvider:
    """Install the process's tracer provider once and instrument httpx."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """Trace every request the app serves (health probes excluded)."""
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz"
    )


def instrument_engine(engine: AsyncEngine, provider: TracerProvider) -> None:
    """Trace every statement sent through ``engine``."""
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)


def shutdown_tracing() -> None:
    """Flush pending spans at process exit."""
    if _provider is not None:
        _provider.shutdown()
