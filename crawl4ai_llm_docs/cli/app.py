"""The command line: parse flags, load configuration, hand over to the pipeline.

Kept thin on purpose: every flag becomes a config override (with its origin, for error
messages and ``config show``) or a run option; the work happens in ``pipeline.py``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import cyclopts
from cyclopts import App, Group, Parameter
from rich.console import Console

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cli.discover import NO_FLAGS, DiscoverFlags, roots_stem, split_targets
from crawl4ai_llm_docs.cli.discover import register as register_discover
from crawl4ai_llm_docs.cli.help_format import NoBreakFormatter
from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.errors import EXIT_INTERRUPTED, EXIT_USAGE, AppError, InputError
from crawl4ai_llm_docs.lifecycle.options import RunOptions

EXIT_CODES_HELP = """\
Exit codes: 0 all documents written; 1 finished, some pages failed (output still written);
2 usage, config or input error; 3 stopped by a fatal provider condition (auth, quota, circuit
breaker open; finished documents still written); 130 interrupted (Ctrl-C)."""

OUTPUT = Group("Output", sort_key=1)
PROVIDER = Group("LLM provider", sort_key=2)
PARALLEL = Group("Parallel processing", sort_key=3)
CRAWL = Group("Crawling", sort_key=4)
PROGRESS = Group("Progress and logging", sort_key=5)
MODE = Group("Run mode", sort_key=6)

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
register_discover(app)

ConfigFile = Annotated[
    Path | None,
    Parameter(
        name="--config",
        group=OUTPUT,
        help="TOML config file; replaces ~/.config/crawl4ai-llm-docs/config.toml and "
        "./crawl4ai-llm-docs.toml.",
    ),
]


def _overrides(**flags: tuple[str, str, Any]) -> dict[str, tuple[Any, str]]:
    """Turn ``name=(dotted_key, flag, value)`` into config overrides, skipping unset flags."""
    return {
        key: (value, f"flag {flag}") for key, flag, value in flags.values() if value is not None
    }


@app.default
async def run(
    *targets: Annotated[
        str,
        Parameter(
            name="URLS_FILE",
            help="Text file with one documentation URL per line, or one or more http(s) root "
            "URLs to discover the pages from.",
        ),
    ],
    output: Annotated[
        Path | None,
        Parameter(
            name=["-o", "--output"],
            group=OUTPUT,
            help="Consolidated Markdown file [default: URLS_FILE with .md].",
        ),
    ] = None,
    llms_txt: Annotated[
        Path | None,
        Parameter(
            name="--llms-txt",
            group=OUTPUT,
            help="Also write llms.txt and llms-full.txt into this directory.",
        ),
    ] = None,
    config: ConfigFile = None,
    max_concurrent: Annotated[
        int | None,
        Parameter(
            name="--max-concurrent",
            group=PARALLEL,
            help="LLM requests in flight at once, 1-20 [default: 4].",
        ),
    ] = None,
    sequential: Annotated[
        bool,
        Parameter(
            name="--sequential",
            negative="",
            group=PARALLEL,
            help="One request at a time (enable_parallel_processing = false).",
        ),
    ] = False,
    disable_adaptive_rate_limiting: Annotated[
        bool,
        Parameter(
            negative="",
            group=PARALLEL,
            help="Ignore the provider's rate-limit headers; keep static caps and Retry-After.",
        ),
    ] = False,
    disable_session_pooling: Annotated[
        bool,
        Parameter(
            negative="", group=PARALLEL, help="A new HTTP client per request (for comparison)."
        ),
    ] = False,
    disable_circuit_breaker: Annotated[
        bool,
        Parameter(negative="", group=PARALLEL, help="Keep sending even when most requests fail."),
    ] = False,
    model: Annotated[
        str | None, Parameter(group=PROVIDER, help="Model name [default: gpt-4o-mini].")
    ] = None,
    base_url: Annotated[
        str | None,
        Parameter(
            group=PROVIDER,
            help="OpenAI-compatible API base URL [default: $OPENAI_BASE_URL or OpenAI's].",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        Parameter(
            name="--insecure",
            negative="",
            group=PROVIDER,
            help="Do not verify TLS certificates (provider and crawled sites). Only for trusted local setups.",
        ),
    ] = False,
    crawl_concurrency: Annotated[
        int | None,
        Parameter(
            name="--crawl-concurrency",
            group=CRAWL,
            help="Pages crawled at once, 1-16 [default: 4].",
        ),
    ] = None,
    crawler: Annotated[
        Literal["auto", "http", "browser"] | None,
        Parameter(
            group=CRAWL,
            help="auto: HTTP, browser only for JavaScript pages; http; browser [default: auto].",
        ),
    ] = None,
    progress_interval: Annotated[
        int | None,
        Parameter(
            name="--progress-interval",
            group=PROGRESS,
            help="Seconds between progress and metrics updates, 1-60 [default: 5].",
        ),
    ] = None,
    no_progress: Annotated[
        bool,
        Parameter(
            name="--no-progress", negative="", group=PROGRESS, help="No live progress display."
        ),
    ] = False,
    log_json: Annotated[
        Path | None,
        Parameter(
            name="--log-json", group=PROGRESS, help="Write one JSON event per line to this file."
        ),
    ] = None,
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"] | None,
        Parameter(name="--log-level", group=PROGRESS, help="Console log level [default: info]."),
    ] = None,
    no_cache: Annotated[
        bool,
        Parameter(
            name="--no-cache",
            negative="",
            group=MODE,
            help="Neither read nor write the LLM result cache.",
        ),
    ] = False,
    refresh: Annotated[
        Literal["changed", "full"] | None,
        Parameter(
            name="--refresh",
            group=MODE,
            help="changed: re-fetch conditionally, redo only pages whose text changed; "
            "full: fetch and convert every page again [default: changed].",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Parameter(
            name="--dry-run",
            negative="",
            group=MODE,
            help="Crawl and chunk, then print requests, tokens, time and cost estimates; no LLM calls.",
        ),
    ] = False,
    no_llm: Annotated[
        bool,
        Parameter(
            name="--no-llm",
            negative="",
            group=MODE,
            help="Write the crawled Markdown directly, without an LLM (no API key needed).",
        ),
    ] = False,
    pages_dir: Annotated[
        Path | None,
        Parameter(
            name="--pages-dir",
            group=OUTPUT,
            help="Also write one Markdown file per page (path mirrors the URL, YAML front matter) into this directory.",
        ),
    ] = None,
    max_file_tokens: Annotated[
        int | None,
        Parameter(
            name="--max-file-tokens",
            group=OUTPUT,
            help="Split the document at page boundaries into NAME.part-01.md ... each under N tokens; 0 = one file [default: 0].",
        ),
    ] = None,
    batch: Annotated[
        bool,
        Parameter(
            name="--batch",
            negative="",
            group=MODE,
            help="Use the provider's Batch API (results within 24 h, about half the price; "
            'llm.mode = "batch"). An interrupted run resumes the same batches when run again.',
        ),
    ] = False,
    batch_fallback: Annotated[
        Literal["batch", "live"] | None,
        Parameter(
            name="--batch-fallback",
            group=MODE,
            help="Batch mode: send failed or expired lines again in a next batch, or live "
            "[default: batch].",
        ),
    ] = None,
    discover: DiscoverFlags = NO_FLAGS,
) -> int:
    """Crawl URLS_FILE and write LLM-ready documentation."""
    overrides = _overrides(
        output=("output.path", "-o/--output", str(output) if output else None),
        llms_txt=("output.llms_txt_dir", "--llms-txt", str(llms_txt) if llms_txt else None),
        pages_dir=("output.pages_dir", "--pages-dir", str(pages_dir) if pages_dir else None),
        max_file_tokens=("output.max_file_tokens", "--max-file-tokens", max_file_tokens),
        max_concurrent=("parallel.max_concurrent_requests", "--max-concurrent", max_concurrent),
        sequential=(
            "parallel.enable_parallel_processing",
            "--sequential",
            False if sequential else None,
        ),
        adaptive=(
            "parallel.enable_adaptive_rate_limiting",
            "--disable-adaptive-rate-limiting",
            False if disable_adaptive_rate_limiting else None,
        ),
        pooling=(
            "parallel.enable_session_pooling",
            "--disable-session-pooling",
            False if disable_session_pooling else None,
        ),
        breaker=(
            "parallel.enable_circuit_breaker",
            "--disable-circuit-breaker",
            False if disable_circuit_breaker else None,
        ),
        model=("llm.model", "--model", model),
        base_url=("llm.base_url", "--base-url", base_url),
        crawl_concurrency=("crawl.max_concurrent", "--crawl-concurrency", crawl_concurrency),
        crawler=("crawl.mode", "--crawler", crawler),
        progress_interval=(
            "parallel.progress_update_interval",
            "--progress-interval",
            progress_interval,
        ),
        no_progress=("logging.progress", "--no-progress", False if no_progress else None),
        log_json=("logging.json_file", "--log-json", str(log_json) if log_json else None),
        log_level=("logging.level", "--log-level", log_level),
        no_cache=("output.cache", "--no-cache", False if no_cache else None),
        refresh=("crawl.refresh", "--refresh", refresh),
        insecure_llm=("llm.verify_tls", "--insecure", False if insecure else None),
        insecure_crawl=("crawl.verify_tls", "--insecure", False if insecure else None),
        batch=("llm.mode", "--batch", "batch" if batch else None),
        batch_fallback=("llm.batch_fallback", "--batch-fallback", batch_fallback),
    )
    if insecure:
        Console(stderr=True).print(
            "[yellow]Warning:[/] --insecure: TLS certificates are not verified; "
            "a network attacker could read the API key and alter pages."
        )
    if dry_run and no_llm:
        raise InputError(
            "--dry-run and --no-llm cannot be combined: --dry-run estimates LLM work that --no-llm skips."
        )
    urls_file, roots = split_targets(targets)
    overrides.update(discover.overrides())
    loaded = load_config(config_file=config, overrides=overrides)
    options = RunOptions(
        urls_file=urls_file or Path(roots_stem(roots)),
        roots=tuple(roots),
        dry_run=dry_run,
        no_llm=no_llm,
    )
    from crawl4ai_llm_docs.pipeline import run_command

    return await run_command(options, loaded)


@app.command(name="check")
async def check(
    *,
    config: ConfigFile = None,
    base_url: Annotated[
        str | None,
        Parameter(
            name="--base-url",
            group=PROVIDER,
            help="OpenAI-compatible API base URL [default: $OPENAI_BASE_URL or OpenAI's].",
        ),
    ] = None,
    model: Annotated[
        str | None,
        Parameter(name="--model", group=PROVIDER, help="Model name [default: gpt-4o-mini]."),
    ] = None,
    insecure: Annotated[
        bool,
        Parameter(
            name="--insecure",
            negative="",
            group=PROVIDER,
            help="Do not verify the provider's TLS certificate. Only for trusted local setups.",
        ),
    ] = False,
) -> int:
    """Check the LLM settings: one tiny request, then 2 and 4 at once. Reports latency, model,
    advertised rate limits, whether the server queues requests, and a suggested
    max_concurrent_requests."""
    from crawl4ai_llm_docs.llm.provider.check import check_provider, render

    overrides = _overrides(
        base_url=("llm.base_url", "--base-url", base_url),
        model=("llm.model", "--model", model),
        insecure=("llm.verify_tls", "--insecure", False if insecure else None),
    )
    loaded = load_config(config_file=config, overrides=overrides)
    result = await check_provider(loaded.config, api_key=loaded.config.api_key())
    print(render(result))
    return 0 if result.ok else 1


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
    console.print(f"[bold red]Error:[/] {exc.message}", markup=True, highlight=False)
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
