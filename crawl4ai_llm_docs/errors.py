"""Every error the tool raises on purpose, and the exit code each one maps to.

    AppError                         base; ``exit_code`` and a one-paragraph ``message``
    ├── UsageError (2)               bad command line, input or configuration
    │   ├── ConfigError              a config key: its source, bad value and what is allowed
    │   ├── InputError               the URL file or an output path
    │   └── BrowserNotFoundError     browser mode asked for, no Chromium found
    ├── OutputWriteError (4)         the outputs could not be written: what was and what not
    ├── CrawlError (1)               one page could not be crawled (reported per page)
    └── ProviderError (1)            the LLM provider answered with an error
        ├── RateLimitExceededError   retries exhausted while rate limited
        ├── ConcurrencyLimitError    a request could not get a concurrency slot
        ├── SessionPoolExhaustedError  no pooled connection became free in time
        └── ProviderFatalError (3)   stop sending at once: auth, quota, model, breaker
            └── CircuitBreakerOpenError

The spec's names without the ``Error`` suffix are kept as aliases.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_PAGES_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL_PROVIDER = 3
EXIT_OUTPUTS = 4  # the work is done (and cached), but the outputs could not be written
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


class AppError(Exception):
    """Base of the tool's own errors: carries the message shown to the user."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AppError):
    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration value is wrong; the message names key, source, value and what is allowed."""


class InputError(UsageError):
    """The URL file, or an output location, cannot be used."""


class BrowserNotFoundError(UsageError):
    """Browser crawling was requested but no Chromium/Chrome executable was found."""


class OutputWriteError(AppError):
    """The outputs could not be written (a full disk, a path the file system refuses): the
    message lists what was written and what was not; ``written`` are the files in place."""

    exit_code = EXIT_OUTPUTS

    def __init__(self, message: str, *, written: list[str] | None = None) -> None:
        super().__init__(message)
        self.written = written or []


class CrawlError(AppError):
    """One page failed to crawl; the run goes on and reports it."""


class ProviderError(AppError):
    """The LLM provider answered with an error for one request."""


class RateLimitExceededError(ProviderError):
    """Still rate limited after every allowed retry."""


class ConcurrencyLimitError(ProviderError):
    """A request could not obtain a concurrency slot."""


class SessionPoolExhaustedError(ProviderError):
    """No pooled HTTP connection became available in time."""


class ProviderFatalError(ProviderError):
    """Sending more requests cannot help (bad key, no quota, unknown model): stop the LLM stage."""

    exit_code = EXIT_FATAL_PROVIDER


class CircuitBreakerOpenError(ProviderFatalError):
    """Too many recent requests failed and probing did not recover: the run stops."""


# The specification's names.
RateLimitExceededException = RateLimitExceededError
CircuitBreakerOpenException = CircuitBreakerOpenError
ConcurrencyLimitException = ConcurrencyLimitError
SessionPoolExhaustedException = SessionPoolExhaustedError
RateLimitExceeded = RateLimitExceededError
CircuitBreakerOpen = CircuitBreakerOpenError
ConcurrencyLimit = ConcurrencyLimitError
SessionPoolExhausted = SessionPoolExhaustedError


def causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes, and the members of any exception group among them."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return seen
