"""The end of a run: the outputs from the spool, the run report, the summary, the exit code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import structlog
import trio
from rich.console import Console

from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.lifecycle.ending import Ending
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.lifecycle.paths import OutputPaths
from crawl4ai_llm_docs.observe.metrics import RunMetrics, log_metrics
from crawl4ai_llm_docs.observe.summary import print_summary, run_finished_fields
from crawl4ai_llm_docs.outputs import publish
from crawl4ai_llm_docs.outputs.consolidated import write_report
from crawl4ai_llm_docs.outputs.publish import OutputRequest

log = structlog.get_logger()

Failures = list[tuple[str, str]]  # (url, reason), in input order


async def write_outputs(
    options: RunOptions,
    config: AppConfig,
    paths: OutputPaths,
    spool: DocumentSpool,
    failures: Failures,
    ending: Ending,
    *,
    pages: int,
) -> list[str]:
    """The consolidated Markdown (or its parts) and, when asked for, llms.txt and
    llms-full.txt and one file per page (``publish``)."""
    request = OutputRequest(
        markdown=paths.markdown,
        generated_at=datetime.now(UTC),
        llms_dir=paths.llms_dir,
        pages_dir=Path(config.output.pages_dir) if config.output.pages_dir else None,
        pages_naming=config.output.pages_naming,
        title=config.output.title,
        fallback_title=options.urls_file.stem.replace("_", " ").replace("-", " ").title(),
        max_file_tokens=config.output.max_file_tokens,
        cleaned=not options.no_llm,
        failed=failures,
        incomplete=ending.incomplete,
        incomplete_reason=ending.note,
    )

    try:
        return await trio.to_thread.run_sync(publish.write_outputs, spool, request)
    except OSError as exc:  # e.g. disk full: one message, and the work is not lost
        raise InputError(
            f"Could not write the output ({exc.strerror or exc}: {exc.filename or paths.markdown}). "
            "Every LLM answer is cached: fix the problem and run the same command again."
        ) from None


async def finish(
    ending: Ending,
    paths: OutputPaths,
    *,
    metrics: RunMetrics,
    outputs: list[str],
    failures: Failures,
    warnings: Failures,
    console: Console,
    estimate: str | None,
) -> int:
    """``run_finished``, then the report and the summary (or, for --dry-run, the estimate)."""
    exit_code = ending.exit_code(failures)
    report_path = paths.report if estimate is None else None
    if report_path is not None:
        outputs = [*outputs, str(report_path)]
    snapshot = log_metrics(metrics)
    fields = run_finished_fields(
        snapshot,
        exit_code=exit_code,
        outputs=outputs,
        incomplete=ending.incomplete,
        failures=failures,
    )
    log.info("run_finished", **fields)
    if estimate is not None:
        # The estimate is the command's result: stdout, where a script can capture it.
        print(estimate, flush=True)
        return exit_code
    if report_path is not None:
        report = {"run_finished": fields, "failures": failures, "warnings": warnings}
        if snapshot.discovery is not None:  # a run from root URLs: what was left out, and why
            report["discovery"] = snapshot.discovery.report()
        try:
            await trio.to_thread.run_sync(write_report, report_path, report)
        except OSError as exc:
            # The documents are written; a lost report is worth a message, not a traceback.
            log.error("error", message=f"Could not write the run report {report_path}: {exc}")
            outputs = [path for path in outputs if path != str(report_path)]
    print_summary(
        console, snapshot, failures=failures, outputs=outputs, incomplete=ending.incomplete
    )
    return exit_code
