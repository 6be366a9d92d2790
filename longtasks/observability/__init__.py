"""Logs, metrics and traces: JSON logs with task context, Prometheus metrics, OpenTelemetry."""
