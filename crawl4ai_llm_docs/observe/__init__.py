"""Observability: structlog events, run metrics and the Rich live view."""
