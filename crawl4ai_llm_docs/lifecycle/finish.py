"""The end of a run: the outputs from the spool, the run report, the summary, the exit code.

Outputs that cannot be written (a full disk, a path the file system refuses) end the run with
exit code 4 and one message listing what was written and what was not; the report and the
summary still follow, so the run's work (all of it cached) is accounted for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import trio
from rich.console import Console

from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.errors import EXIT_OUTPUTS, OutputWriteError
from crawl4ai_llm_docs.lifecycle.ending import Ending
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.lifecycle.paths import OutputPaths
from crawl4ai_llm_docs.observe.metrics import RunMetrics, log_metrics
from crawl4ai_llm_docs.observe.summary import print_summary, run_finished_fields
from crawl4ai_llm_docs.outputs import publish
from crawl4ai_llm_docs.outputs.consolidated import write_report
from crawl4ai_llm_docs.outputs.publish import OutputRequest
from crawl4ai_llm_docs.search.update import IndexRequest

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
    index: IndexRequest | None = None,
) -> tuple[list[str], Ending]:
    """The consolidated Markdown (or its parts) and, when asked for, llms.txt and
    llms-full.txt and one file per page (``publish``): the files written, and how the run
    ended (``ending``, or one whose outputs failed)."""
    request = OutputRequest(
        markdown=paths.markdown,
        generated_at=datetime.now(UTC),
        llms_dir=paths.llms_dir,
        llms_txt_per_section=config.output.llms_txt_per_section,
        pages_dir=Path(config.output.pages_dir) if config.output.pages_dir else None,
        pages_naming=config.output.pages_naming,
        title=config.output.title,
        fallback_title=options.urls_file.stem.replace("_", " ").replace("-", " ").title(),
        max_file_tokens=config.output.max_file_tokens,
        cleaned=not options.no_llm,
        failed=failures,
        incomplete=ending.incomplete,
        incomplete_reason=ending.note,
        index=index,
    )

    try:
        written = await trio.to_thread.run_sync(publish.write_outputs, spool, request)
    except OutputWriteError as exc:  # e.g. disk full: one message, and the work is not lost
        log.error("error", message=exc.message)
        return exc.written, ending.outputs_failed(exc.message)
    return written, ending


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
    """The report, ``run_finished`` and the summary (or, for --dry-run, the estimate)."""
    exit_code = ending.exit_code(failures)
    report_path = paths.report if estimate is None else None
    if report_path is not None:
        outputs = [*outputs, str(report_path)]
    snapshot = log_metrics(metrics)

    def fields() -> dict[str, Any]:
        return run_finished_fields(
            snapshot,
            exit_code=exit_code,
            outputs=outputs,
            incomplete=ending.incomplete,
            failures=failures,
        )

    if estimate is not None:
        log.info("run_finished", **fields())
        # The estimate is the command's result: stdout, where a script can capture it.
        print(estimate, flush=True)
        return exit_code
    if report_path is not None:
        report = {"run_finished": fields(), "failures": failures, "warnings": warnings}
        if snapshot.discovery is not None:  # a run from root URLs: what was left out, and why
            report["discovery"] = snapshot.discovery.report()
        try:
            await trio.to_thread.run_sync(write_report, report_path, report)
        except OSError as exc:
            # A lost report is worth a message and its exit code, not a traceback.
            outputs = [path for path in outputs if path != str(report_path)]
            log.error(
                "error",
                message=f"Outputs could not be written ({exc.strerror or exc}). Written: "
                f"{', '.join(outputs) or 'nothing'}. Not written: the run report {report_path}.",
            )
            exit_code = EXIT_OUTPUTS
    # After the report: the event carries the exit code the process ends with.
    log.info("run_finished", **fields())
    print_summary(
        console,
        snapshot,
        failures=failures,
        outputs=outputs,
        incomplete=ending.incomplete,
        not_written=exit_code == EXIT_OUTPUTS,
    )
    return exit_code
