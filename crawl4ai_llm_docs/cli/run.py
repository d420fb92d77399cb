"""The main command: crawl a URL file (or discover from root URLs) and write the documents."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import Parameter
from rich.console import Console

from crawl4ai_llm_docs.cli.discover import NO_FLAGS, DiscoverFlags, roots_stem, split_targets
from crawl4ai_llm_docs.cli.flags import (
    CRAWL,
    MODE,
    OUTPUT,
    PARALLEL,
    PROGRESS,
    PROVIDER,
    ConfigFile,
    TrustProjectConfig,
    flag_overrides,
    trust_override,
)
from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.lifecycle.options import RunOptions


@Parameter(name="*")
@dataclass(frozen=True)
class RunFlags:
    """The main command's options (discovery's are ``DiscoverFlags``), flattened into it."""

    output: Annotated[
        Path | None,
        Parameter(
            name=["-o", "--output"],
            group=OUTPUT,
            help="Consolidated Markdown file [default: URLS_FILE with .md].",
        ),
    ] = None
    llms_txt: Annotated[
        Path | None,
        Parameter(
            name="--llms-txt",
            group=OUTPUT,
            help="Also write llms.txt and llms-full.txt into this directory.",
        ),
    ] = None
    llms_txt_per_section: Annotated[
        bool,
        Parameter(
            name="--llms-txt-per-section",
            negative="",
            group=OUTPUT,
            help="With --llms-txt: also one llms.txt per section directory (llms.txt v2), "
            "at its URL path inside that directory (docs/guide/llms.txt).",
        ),
    ] = False
    config: ConfigFile = None
    trust_project_config: TrustProjectConfig = False
    max_concurrent: Annotated[
        int | None,
        Parameter(
            name="--max-concurrent",
            group=PARALLEL,
            help="LLM requests in flight at once, 1-20 [default: 4].",
        ),
    ] = None
    sequential: Annotated[
        bool,
        Parameter(
            name="--sequential",
            negative="",
            group=PARALLEL,
            help="One request at a time (enable_parallel_processing = false).",
        ),
    ] = False
    disable_adaptive_rate_limiting: Annotated[
        bool,
        Parameter(
            negative="",
            group=PARALLEL,
            help="Ignore the provider's rate-limit headers; keep static caps and Retry-After.",
        ),
    ] = False
    disable_session_pooling: Annotated[
        bool,
        Parameter(
            negative="", group=PARALLEL, help="A new HTTP client per request (for comparison)."
        ),
    ] = False
    disable_circuit_breaker: Annotated[
        bool,
        Parameter(negative="", group=PARALLEL, help="Keep sending even when most requests fail."),
    ] = False
    model: Annotated[
        str | None, Parameter(group=PROVIDER, help="Model name [default: gpt-4o-mini].")
    ] = None
    base_url: Annotated[
        str | None,
        Parameter(
            group=PROVIDER,
            help="OpenAI-compatible API base URL [default: $OPENAI_BASE_URL or OpenAI's].",
        ),
    ] = None
    insecure: Annotated[
        bool,
        Parameter(
            name="--insecure",
            negative="",
            group=PROVIDER,
            help="Do not verify TLS certificates (provider and crawled sites). Only for trusted local setups.",
        ),
    ] = False
    crawl_concurrency: Annotated[
        int | None,
        Parameter(
            name="--crawl-concurrency",
            group=CRAWL,
            help="Pages crawled at once, 1-16 [default: 4].",
        ),
    ] = None
    crawler: Annotated[
        Literal["auto", "http", "browser"] | None,
        Parameter(
            group=CRAWL,
            help="auto: HTTP, browser only for JavaScript pages; http; browser [default: auto].",
        ),
    ] = None
    prefer_markdown: Annotated[
        Literal["auto", "never", "always"] | None,
        Parameter(
            name="--prefer-markdown",
            group=CRAWL,
            help="auto: take the Markdown a page offers when it holds what the HTML shows; "
            "always: also look for page.md beside pages; never: convert the HTML [default: auto].",
        ),
    ] = None
    progress_interval: Annotated[
        int | None,
        Parameter(
            name="--progress-interval",
            group=PROGRESS,
            help="Seconds between progress and metrics updates, 1-60 [default: 5].",
        ),
    ] = None
    no_progress: Annotated[
        bool,
        Parameter(
            name="--no-progress", negative="", group=PROGRESS, help="No live progress display."
        ),
    ] = False
    log_json: Annotated[
        Path | None,
        Parameter(
            name="--log-json", group=PROGRESS, help="Write one JSON event per line to this file."
        ),
    ] = None
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"] | None,
        Parameter(name="--log-level", group=PROGRESS, help="Console log level [default: info]."),
    ] = None
    no_cache: Annotated[
        bool,
        Parameter(
            name="--no-cache",
            negative="",
            group=MODE,
            help="Neither read nor write the LLM result cache.",
        ),
    ] = False
    refresh: Annotated[
        Literal["changed", "full"] | None,
        Parameter(
            name="--refresh",
            group=MODE,
            help="changed: re-fetch conditionally, redo only pages whose text changed; "
            "full: fetch and convert every page again [default: changed].",
        ),
    ] = None
    dry_run: Annotated[
        bool,
        Parameter(
            name="--dry-run",
            negative="",
            group=MODE,
            help="Crawl and chunk, then print requests, tokens, time and cost estimates; no LLM calls.",
        ),
    ] = False
    no_llm: Annotated[
        bool,
        Parameter(
            name="--no-llm",
            negative="",
            group=MODE,
            help="Write the crawled Markdown directly, without an LLM (no API key needed).",
        ),
    ] = False
    pages_dir: Annotated[
        Path | None,
        Parameter(
            name="--pages-dir",
            group=OUTPUT,
            help="Also write one Markdown file per page (path mirrors the URL, YAML front matter) into this directory.",
        ),
    ] = None
    pages_naming: Annotated[
        Literal["page.md", "page.html.md"] | None,
        Parameter(
            name="--pages-naming",
            group=OUTPUT,
            help="--pages-dir file names: page.md (extension replaced) or page.html.md "
            "(URL path + .md) [default: page.md].",
        ),
    ] = None
    max_file_tokens: Annotated[
        int | None,
        Parameter(
            name="--max-file-tokens",
            group=OUTPUT,
            help="Split the document at page boundaries into NAME.part-01.md ... each under N tokens; 0 = one file [default: 0].",
        ),
    ] = None
    no_index: Annotated[
        bool,
        Parameter(
            name="--no-index",
            negative="",
            group=OUTPUT,
            help="Do not update the docs index that `search` and `serve` read (output.index).",
        ),
    ] = False
    index: Annotated[
        Path | None,
        Parameter(
            name="--index",
            group=OUTPUT,
            help="The docs index file [default: docs-index.sqlite in the user data directory].",
        ),
    ] = None
    docs_set: Annotated[
        str | None,
        Parameter(
            name="--docs-set",
            group=OUTPUT,
            help="Docs set to index the pages into, a slug such as python-3.11 "
            "[default: from the site's name].",
        ),
    ] = None
    chunks_jsonl: Annotated[
        Path | None,
        Parameter(
            name="--chunks-jsonl",
            group=OUTPUT,
            help="Also write the pages' heading-path sections as JSON lines (for a vector store).",
        ),
    ] = None
    batch: Annotated[
        bool,
        Parameter(
            name="--batch",
            negative="",
            group=MODE,
            help="Use the provider's Batch API (results within 24 h, about half the price; "
            'llm.mode = "batch"). An interrupted run resumes the same batches when run again.',
        ),
    ] = False
    batch_fallback: Annotated[
        Literal["batch", "live"] | None,
        Parameter(
            name="--batch-fallback",
            group=MODE,
            help="Batch mode: send failed or expired lines again in a next batch, or live "
            "[default: batch].",
        ),
    ] = None
    cleaning: Annotated[
        Literal["rewrite", "edit"] | None,
        Parameter(
            name="--cleaning",
            group=MODE,
            help="rewrite: the model writes each cleaned page; edit: it answers with a short "
            "edit script (lines to drop, headings, joins) the tool applies, for a fraction of "
            "the tokens [default: edit].",
        ),
    ] = None

    def overrides(self) -> dict[str, tuple[Any, str]]:
        """Every flag given, as a config override with its origin (``flag --name``)."""
        return trust_override(self.trust_project_config) | flag_overrides(
            output=("output.path", "-o/--output", str(self.output) if self.output else None),
            llms_txt=(
                "output.llms_txt_dir",
                "--llms-txt",
                str(self.llms_txt) if self.llms_txt else None,
            ),
            llms_txt_per_section=(
                "output.llms_txt_per_section",
                "--llms-txt-per-section",
                True if self.llms_txt_per_section else None,
            ),
            pages_dir=(
                "output.pages_dir",
                "--pages-dir",
                str(self.pages_dir) if self.pages_dir else None,
            ),
            pages_naming=("output.pages_naming", "--pages-naming", self.pages_naming),
            max_file_tokens=("output.max_file_tokens", "--max-file-tokens", self.max_file_tokens),
            no_index=("output.index", "--no-index", False if self.no_index else None),
            index=("output.index_path", "--index", str(self.index) if self.index else None),
            docs_set=("output.docs_set", "--docs-set", self.docs_set),
            chunks_jsonl=(
                "output.chunks_jsonl",
                "--chunks-jsonl",
                str(self.chunks_jsonl) if self.chunks_jsonl else None,
            ),
            max_concurrent=(
                "parallel.max_concurrent_requests",
                "--max-concurrent",
                self.max_concurrent,
            ),
            sequential=(
                "parallel.enable_parallel_processing",
                "--sequential",
                False if self.sequential else None,
            ),
            adaptive=(
                "parallel.enable_adaptive_rate_limiting",
                "--disable-adaptive-rate-limiting",
                False if self.disable_adaptive_rate_limiting else None,
            ),
            pooling=(
                "parallel.enable_session_pooling",
                "--disable-session-pooling",
                False if self.disable_session_pooling else None,
            ),
            breaker=(
                "parallel.enable_circuit_breaker",
                "--disable-circuit-breaker",
                False if self.disable_circuit_breaker else None,
            ),
            model=("llm.model", "--model", self.model),
            base_url=("llm.base_url", "--base-url", self.base_url),
            crawl_concurrency=(
                "crawl.max_concurrent",
                "--crawl-concurrency",
                self.crawl_concurrency,
            ),
            crawler=("crawl.mode", "--crawler", self.crawler),
            prefer_markdown=("crawl.prefer_markdown", "--prefer-markdown", self.prefer_markdown),
            progress_interval=(
                "parallel.progress_update_interval",
                "--progress-interval",
                self.progress_interval,
            ),
            no_progress=("logging.progress", "--no-progress", False if self.no_progress else None),
            log_json=(
                "logging.json_file",
                "--log-json",
                str(self.log_json) if self.log_json else None,
            ),
            log_level=("logging.level", "--log-level", self.log_level),
            no_cache=("output.cache", "--no-cache", False if self.no_cache else None),
            refresh=("crawl.refresh", "--refresh", self.refresh),
            insecure_llm=("llm.verify_tls", "--insecure", False if self.insecure else None),
            insecure_crawl=("crawl.verify_tls", "--insecure", False if self.insecure else None),
            batch=("llm.mode", "--batch", "batch" if self.batch else None),
            batch_fallback=("llm.batch_fallback", "--batch-fallback", self.batch_fallback),
            cleaning=("llm.cleaning", "--cleaning", self.cleaning),
        )


NO_RUN_FLAGS = RunFlags()


async def run(
    *targets: Annotated[
        str,
        Parameter(
            name="URLS_FILE",
            help="Text file with one documentation URL per line, or one or more http(s) root "
            "URLs to discover the pages from.",
        ),
    ],
    flags: RunFlags = NO_RUN_FLAGS,
    discover: DiscoverFlags = NO_FLAGS,
) -> int:
    """Crawl URLS_FILE and write LLM-ready documentation."""
    overrides = flags.overrides()
    if flags.insecure:
        Console(stderr=True).print(
            "[yellow]Warning:[/] --insecure: TLS certificates are not verified; "
            "a network attacker could read the API key and alter pages."
        )
    if flags.dry_run and flags.no_llm:
        raise InputError(
            "--dry-run and --no-llm cannot be combined: --dry-run estimates LLM work that --no-llm skips."
        )
    urls_file, roots = split_targets(targets)
    overrides.update(discover.overrides())
    loaded = load_config(config_file=flags.config, overrides=overrides)
    if flags.llms_txt_per_section and not loaded.config.output.llms_txt_dir:
        raise InputError(
            "--llms-txt-per-section writes beside llms.txt: give --llms-txt DIR too "
            "(or set output.llms_txt_dir)."
        )
    options = RunOptions(
        urls_file=urls_file or Path(roots_stem(roots)),
        roots=tuple(roots),
        dry_run=flags.dry_run,
        no_llm=flags.no_llm,
    )
    from crawl4ai_llm_docs.pipeline import run_command

    return await run_command(options, loaded)
