"""Observability: structlog events, run metrics, the Rich live view and the run summary (both
laid out by ``flow``: whole phrases, wrapped to the terminal's width)."""
