"""structlog set-up: every event to the JSON file, terse lines to the console, metrics fed.

Chain: merge_contextvars -> add_log_level -> TimeStamper(iso, utc) -> run_id -> exception text
-> redaction -> metrics -> fan-out. The fan-out writes every contract event as one JSON line
(validated against ``observe.events``, so the file always decodes strictly) and prints a few
kinds of events, at or above the chosen level, through the Rich console the live view uses, so
lines never interleave with it. Python's stdlib logging is routed into the same chain so
nothing reaches the terminal unredacted.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec
import structlog
from rich.console import Console
from rich.text import Text
from structlog.typing import EventDict, Processor, WrappedLogger

from crawl4ai_llm_docs.observe.events import EVENT_NAMES, AnyEvent, Error
from crawl4ai_llm_docs.observe.metrics import RunMetrics

Level = Literal["debug", "info", "warning", "error"]
REDACTED = "[REDACTED]"
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# At info the console shows only what a person should act on; the rest is in the JSON log.
_CONSOLE_AT_INFO = frozenset(
    {"page_failed", "retry", "rate_limit", "circuit_breaker", "faithfulness_fallback"}
    | {"warning", "error", "run_started"}
    | {"batch_created", "batch_resumed", "batch_progress", "batch_finished"}
    | {"index_updated"}  # names the docs set: what `search` and `serve` know it by
)
_THROTTLED = frozenset({"retry", "rate_limit"})  # can come in storms under a 429 burst
_CONSOLE_ONLY_KEYS = ("exception",)  # tracebacks are for people; not in the JSON contract
_QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "hypercorn", "asyncio", "urllib3", "crawl4ai")
_SENSITIVE_KEYS = re.compile(r"(?i)^(authorization|api[-_]?key|x-api-key|password|secret|token)$")
_TOKEN_PATTERNS = (
    # "Authorization: Bearer x", "api_key=x", "x-api-key: x": keep the name, hide the value.
    re.compile(
        r"(?i)\b((?:authorization|(?:x-)?api[-_]?key)[\"']?\s*[:=]\s*[\"']?)"
        r"(?:(?:bearer|basic|token)\s+)?[^\s\"'&,;]+"
    ),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{12,}"),
)
_MIN_SECRET_LENGTH = 4  # shorter "secrets" would blank out ordinary words


class Redactor:
    """Replaces secrets and token-looking strings in any (nested) value with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        usable = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, usable))) if usable else None

    def text(self, value: str) -> str:
        if self._secrets is not None:
            value = self._secrets.sub(REDACTED, value)
        value = _TOKEN_PATTERNS[0].sub(lambda m: m.group(1) + REDACTED, value)
        value = _TOKEN_PATTERNS[1].sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return _TOKEN_PATTERNS[2].sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {
                key: REDACTED
                if isinstance(key, str) and _SENSITIVE_KEYS.match(key) and value[key]
                else self.value(value[key])
                for key in value
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        # Exceptions, paths, headers objects...: their text is what would be shown.
        return self.text(str(value))

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        for key, item in event.items():
            event[key] = self.value(item)
        return event


class _JsonSink:
    """One JSON line per event, one write(2) each, so ``kill -9`` loses at most a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = os.open(path, flags, 0o600)
        if stat.S_ISREG(os.fstat(self._fd).st_mode):  # not a device such as /dev/stderr
            os.fchmod(self._fd, 0o600)  # user-only even if the file already existed
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()
        self.failure: OSError | None = None

    def write(self, event: EventDict) -> None:
        if self._fd is None:
            return
        payload = {k: v for k, v in event.items() if k not in _CONSOLE_ONLY_KEYS}
        try:
            record: msgspec.Struct = msgspec.convert(payload, AnyEvent)
        except msgspec.ValidationError as exc:
            if event.get("event") not in EVENT_NAMES and event.get("level") == "debug":
                return  # free-form debug events are for the console only
            # Keep the file strictly decodable and make the contract violation visible.
            record = Error(
                timestamp=str(event.get("timestamp", "")),
                level="error",
                run_id=str(event.get("run_id", "")),
                message=f"event {event.get('event')!r} does not match the JSON contract: {exc}",
            )
        line = self._encoder.encode(record) + b"\n"
        # A small synchronous write to the page cache: logging cannot await.
        with self._lock:
            if self._fd is not None:
                try:
                    _write_all(self._fd, line)
                except OSError as exc:  # disk full, file gone: the run goes on without it
                    os.close(self._fd)
                    self._fd = None
                    self.failure = exc

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Throttle:
    """At most ``burst`` lines per window for one kind of event, then a count of the rest."""

    def __init__(self, clock: Callable[[], float], window_s: float = 10.0, burst: int = 3) -> None:
        self._clock, self._window_s, self._burst = clock, window_s, burst
        self._window_start = -float("inf")
        self._shown = 0
        self.suppressed = 0

    def admit(self) -> tuple[bool, int]:
        """(show this line?, lines suppressed in the window that just ended)."""
        now = self._clock()
        ended = 0
        if now - self._window_start >= self._window_s:
            ended, self.suppressed, self._shown, self._window_start = self.suppressed, 0, 0, now
        if self._shown < self._burst:
            self._shown += 1
            return True, ended
        self.suppressed += 1
        return False, ended


# One terse line per kind of event; anything else is shown as key=value pairs.
_CONSOLE_TEXT = {
    "page_failed": "crawl failed: {url} ({reason}, status {status})",
    "page_crawled": "crawled {url} ({mode}, status {status}, {elapsed_ms:.0f} ms)",
    "llm_request": "llm {url} #{chunk} attempt {attempt}: {outcome} "
    "(status {status}, {latency_ms:.0f} ms)",
    "chunk_cached": "cached {url} #{chunk}",
    "faithfulness_fallback": "kept the original text of {url} #{chunk}: {reason}",
    "rate_limit": "rate limit: waiting {wait_s:.1f}s ({reason}); "
    "concurrency now {effective_concurrency}",
    "circuit_breaker": "circuit breaker {old_state} -> {new_state}: {reason}",
    "retry": "retry {url} in {delay_s:.1f}s (attempt {attempt}): {reason}",
    "run_started": "run {run_id}: {urls} URLs",
    "run_finished": "run finished: exit {exit_code} in {wall_s:.1f}s, "
    "{documents} documents, {failed_pages} failed pages",
    "metrics": "metrics: {stage} {done}/{total} chunks, "
    "in-flight {in_flight}/{effective_limit}, {requests_per_s:.1f} req/s",
    "warning": "{message}",
    "error": "{message}",
    "batch_created": "batch {batch_id} created: {lines} lines (round {round})",
    "batch_resumed": "resuming stored batch {batch_id} ({lines} lines)",
    "batch_progress": "batch {batch_id} {status}: {completed}/{total} done, {failed} failed, "
    "{elapsed_s:.0f} s",
    "batch_finished": "batch {batch_id} {status}: {completed} done, {failed} failed",
    "index_updated": "docs index: set {docs_set}: {new_pages} new, {changed_pages} changed, "
    "{unchanged_pages} unchanged, {removed_pages} removed pages ({path})",
}


def _describe(event: EventDict) -> str:
    template = _CONSOLE_TEXT.get(str(event.get("event")))
    if template is not None:
        try:
            return template.format_map(event)
        except (KeyError, TypeError, ValueError):  # a malformed event must not break the caller
            pass
    skip = {"event", "timestamp", "level", "run_id", *_CONSOLE_ONLY_KEYS}
    fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in skip)
    return f"{event.get('event')} {fields}".rstrip()


_LEVEL_STYLE = {"debug": "dim", "info": "cyan", "warning": "yellow", "error": "bold red"}


class _ConsoleSink:
    def __init__(self, console: Console, level: str, clock: Callable[[], float]) -> None:
        self._console = console
        self._threshold = _LEVELS[level]
        self._debug = self._threshold <= _LEVELS["debug"]
        self._throttles = {name: _Throttle(clock) for name in _THROTTLED}

    def write(self, event: EventDict) -> None:
        level = str(event.get("level", "info"))
        number = _LEVELS.get(level, 20)
        name = str(event.get("event"))
        if number < self._threshold:
            return
        quiet = event.get("reason") in ("concurrency", "probe")
        if name == "rate_limit" and quiet and not self._debug:
            return  # the normal queue for a slot, or spacing sends to a silent provider
        if not (self._debug or number >= _LEVELS["warning"] or name in _CONSOLE_AT_INFO):
            return
        throttle = None if self._debug else self._throttles.get(name)
        if throttle is not None:
            show, ended = throttle.admit()
            if ended:
                self.line("info", f"... {ended} more {name} lines (all in the JSON log)")
            if not show:
                return
        self.line(level, _describe(event))
        if "exception" in event and (self._debug or number >= _LEVELS["error"]):
            self._console.print(Text(str(event["exception"]), style="dim"))

    def line(self, level: str, message: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        tag = {"warning": "WARN", "critical": "ERROR"}.get(level, level.upper())
        text = Text.assemble((f"{stamp} ", "dim"), (f"{tag:<5} ", _LEVEL_STYLE.get(level, "")))
        text.append(message)
        text.overflow = "fold"
        self._console.print(text)  # safe while a rich.live.Live is active on this console

    def flush(self) -> None:
        for name, throttle in self._throttles.items():
            if throttle.suppressed:
                self.line(
                    "info", f"... {throttle.suppressed} more {name} lines (all in the JSON log)"
                )
                throttle.suppressed = 0


class _FanOut:
    """The last processor: it does the output itself, so the event goes no further."""

    def __init__(self, json_sink: _JsonSink | None, console_sink: _ConsoleSink | None) -> None:
        self.json_sink, self.console_sink = json_sink, console_sink

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        if self.json_sink is not None:
            self.json_sink.write(event)
            if self.json_sink.failure is not None:
                failure, self.json_sink = self.json_sink.failure, None
                if self.console_sink is not None:
                    self.console_sink.line("error", f"JSON log stopped: {failure}")
        if self.console_sink is not None:
            self.console_sink.write(event)
        raise structlog.DropEvent


class _StdlibBridge(logging.Handler):
    """Library log records become structlog events, so they are redacted like the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"{record.name}: {record.getMessage()}"
            log = structlog.get_logger()
            exc = record.exc_info
            if record.levelno >= logging.ERROR:
                log.error("error", message=message, exc_info=exc)
            elif record.levelno >= logging.WARNING:
                log.warning("warning", message=message, exc_info=exc)
            else:
                log.debug("stdlib", message=message)
        except Exception:
            self.handleError(record)


class LoggingHandle:
    """The configured logging of one run; ``close()`` (or leaving the ``with``) flushes it."""

    def __init__(
        self,
        *,
        redactor: Redactor,
        json_sink: _JsonSink | None,
        console_sink: _ConsoleSink | None,
        json_file: Path | None,
    ) -> None:
        self.redactor = redactor
        self.json_file = json_file
        self._json_sink = json_sink
        self._console_sink = console_sink
        self._bridge = _StdlibBridge()
        self._saved_root: tuple[list[logging.Handler], int] | None = None
        self._saved_levels: dict[str, int] = {}
        self.closed = False

    def _route_stdlib(self, level: str) -> None:
        root = logging.getLogger()
        self._saved_root = (list(root.handlers), root.level)
        root.handlers = [self._bridge]  # drop stderr handlers that would print unredacted
        root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
        for name in _QUIET_LOGGERS:
            named = logging.getLogger(name)
            self._saved_levels[name] = named.level
            named.setLevel(logging.WARNING)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._console_sink is not None:
            self._console_sink.flush()
        if self._json_sink is not None:
            self._json_sink.close()
        if self._saved_root is not None:
            root = logging.getLogger()
            root.handlers, level = self._saved_root
            root.setLevel(level)
            for name, saved in self._saved_levels.items():
                logging.getLogger(name).setLevel(saved)

    def __enter__(self) -> LoggingHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_active: LoggingHandle | None = None
_active_lock = threading.Lock()


def configure_logging(
    *,
    run_id: str,
    json_file: Path | None,
    level: str,
    secrets: Sequence[str],
    metrics: RunMetrics | None,
    console: Console | None,
    clock: Callable[[], float] = time.monotonic,
) -> LoggingHandle:
    """Configure structlog (and route stdlib logging) for one run; replaces any previous setup.

    ``clock`` paces the console's summaries of retry / rate-limit storms.
    """
    global _active
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of debug, info, warning, error")
    with _active_lock:
        if _active is not None:
            _active.close()
        redactor = Redactor(secrets)
        json_sink = _JsonSink(json_file) if json_file is not None else None
        console_sink = _ConsoleSink(console, level, clock) if console is not None else None

        def add_run_id(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
            event["run_id"] = run_id
            return event

        processors: list[Processor] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_run_id,
            structlog.processors.format_exc_info,
            redactor,
        ]
        if metrics is not None:

            def feed_metrics(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
                metrics.observe(event)
                return event

            processors.append(feed_metrics)
        processors.append(_FanOut(json_sink, console_sink))
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            logger_factory=structlog.ReturnLoggerFactory(),
            cache_logger_on_first_use=False,  # tests reconfigure; module-level loggers follow
        )
        handle = LoggingHandle(
            redactor=redactor, json_sink=json_sink, console_sink=console_sink, json_file=json_file
        )
        handle._route_stdlib(level)
        _active = handle
        return handle
