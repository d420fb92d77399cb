"""The command line: parse flags, load configuration, hand over to the pipeline.

Kept thin on purpose: every flag becomes a config override (with its origin, for error
messages and ``config show``) or a run option; the work happens in ``pipeline.py``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

import cyclopts
from cyclopts import App, Parameter
from rich.console import Console
from rich.markup import escape

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cli.check import check
from crawl4ai_llm_docs.cli.discover import register as register_discover
from crawl4ai_llm_docs.cli.help_format import NoBreakFormatter
from crawl4ai_llm_docs.cli.run import run
from crawl4ai_llm_docs.cli.validate import EXIT_CODES_HELP as VALIDATE_EXIT_CODES
from crawl4ai_llm_docs.cli.validate import validate
from crawl4ai_llm_docs.errors import EXIT_INTERRUPTED, EXIT_USAGE, AppError

EXIT_CODES_HELP = """\
Exit codes: 0 all documents written; 1 finished, some pages failed (output still written);
2 usage, config or input error (nothing written); 3 stopped by a fatal provider condition
(auth, quota, circuit breaker open; finished documents still written); 4 outputs could not be
written (what was written and what was not is listed; every answer is cached); 130
interrupted (Ctrl-C); 143 terminated (SIGTERM); both write the finished documents."""


app = App(
    name="crawl4ai-llm-docs",
    help=(
        "Crawl the documentation URLs listed in URLS_FILE, clean every page with an "
        "OpenAI-compatible LLM (in parallel, within the provider's rate limits) and write one "
        "consolidated Markdown document, optionally with llms.txt and llms-full.txt.\n\n"
        "The API key is read from $OPENAI_API_KEY (see llm.api_key_env)."
    ),
    help_epilogue=EXIT_CODES_HELP,
    version=__version__,
    backend="trio",
    result_action="return_value",
    default_parameter=Parameter(show_default=False),
    help_formatter=NoBreakFormatter(),
)
app.command(
    "crawl4ai_llm_docs.cli.config:config_app",
    name="config",
    help="Show, create or locate configuration files.",
)
app.command(
    "crawl4ai_llm_docs.cli.batch:batch_app",
    name="batch",
    help="List or cancel the Batch API batches stored by runs with --batch.",
)
app.command(
    "crawl4ai_llm_docs.cli.search:search",
    name="search",
    help="Search the docs index that runs keep.",
)
app.command(
    "crawl4ai_llm_docs.cli.serve:serve",
    name="serve",
    help="Serve the docs index to coding agents over MCP (stdio, or HTTP with --http).",
)
register_discover(app)
app.default(run)
app.command(check, name="check")
app.command(validate, name="validate", help_epilogue=VALIDATE_EXIT_CODES)


def run_cli(argv: Sequence[str] | None = None, *, stderr: Console | None = None) -> int:
    """Run the command line and return the exit code; errors become one clear message."""
    error_console = stderr or Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(
            list(argv) if argv is not None else sys.argv[1:],
            exit_on_error=False,
            print_error=True,
            error_console=error_console,
        )
    except cyclopts.CycloptsError:
        return EXIT_USAGE  # cyclopts has already printed the message with usage
    except AppError as exc:
        return _report(error_console, exc)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            return EXIT_INTERRUPTED  # a Ctrl-C that trio delivered inside the run's nursery
        # A stage failed inside the run's nursery: show our own error, re-raise anything else.
        errors, rest = group.split(AppError)
        if errors is None or rest is not None:
            raise
        return _report(error_console, _first_leaf(errors))
    return result if isinstance(result, int) else 0


def _first_leaf(group: BaseExceptionGroup[AppError]) -> AppError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _report(console: Console, exc: AppError) -> int:
    # escape: a message naming [section] or [[crawl.auth]] is text, not Rich markup.
    console.print(f"[bold red]Error:[/] {escape(exc.message)}", markup=True, highlight=False)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = run_cli(argv)
    except KeyboardInterrupt:
        # Ctrl-C outside the run's own handler (start-up, or after the run): no traceback.
        code = EXIT_INTERRUPTED
    # A further Ctrl-C while the interpreter shuts down must not print a traceback either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
