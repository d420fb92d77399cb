"""``crawl4ai-llm-docs batch status|cancel``: the batches stored in the cache directory.

A batch run with ``--batch`` keeps its batch ids in ``<cache_dir>/batches`` until every answer
is collected. ``status`` lists them with what the provider says now; ``cancel`` stops them at
the provider (what they finished is still collected by the next run of the same command).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import httpx
import trio
from cyclopts import App, Parameter

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cli.flags import TrustProjectConfig, trust_override
from crawl4ai_llm_docs.config import AppConfig, load_config
from crawl4ai_llm_docs.errors import AppError, InputError
from crawl4ai_llm_docs.llm.batch.api import Batch, BatchApi
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore

batch_app = App(
    name="batch",
    help="List or cancel the Batch API batches stored by runs with --batch.",
    help_epilogue="Exit codes: 0 done; 1 a batch could not be cancelled; 2 usage or config error.",
)


def _client(config: AppConfig) -> httpx.AsyncClient:
    headers = {"User-Agent": f"crawl4ai-llm-docs/{__version__}"}
    api_key = config.api_key()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.AsyncClient(
        headers=headers,
        verify=config.llm.verify_tls,
        timeout=httpx.Timeout(None, connect=30.0),
    )


def _api(client: httpx.AsyncClient, config: AppConfig, record: BatchRecord) -> BatchApi:
    return BatchApi(
        client,
        base_url=record.base_url,
        timeout=min(config.parallel.request_timeout, 30.0),
        secret=config.api_key(),
        retries=1,
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _row(record: BatchRecord, batch: Batch | None, problem: str | None) -> str:
    name = record.batch_id or f"(not created; file {record.input_file_id})"
    if batch is not None:
        counts = batch.counts
        state = (
            f"{batch.status}  {counts.completed}/{counts.total or record.lines} done, "
            f"{counts.failed} failed"
        )
    elif problem is not None:
        state = f"status unknown: {problem}"
    else:
        state = "uploaded; the next run creates the batch"
    age = _age(time.time() - record.created_at)
    return (
        f"{name}  {state}  ({record.lines} lines, {age} old, {record.model} at {record.base_url})"
    )


async def _status(config: AppConfig) -> int:
    store = BatchStore(config.cache_directory())
    records = await trio.to_thread.run_sync(store.load_all)
    if not records:
        print(f"No stored batches in {store.directory}.")
        return 0
    print(f"{len(records)} stored batch(es) in {store.directory}:")
    async with _client(config) as client:
        for record in records:
            batch: Batch | None = None
            problem: str | None = None
            if record.batch_id is not None:
                try:
                    batch = await _api(client, config, record).retrieve(record.batch_id)
                except AppError as exc:
                    problem = exc.message
            print("  " + _row(record, batch, problem))
    print(
        "Run the command that created a batch again to collect its results; "
        "`crawl4ai-llm-docs batch cancel BATCH_ID` stops one."
    )
    return 0


async def _cancel(config: AppConfig, ids: list[str], everything: bool) -> int:
    store = BatchStore(config.cache_directory())
    records = await trio.to_thread.run_sync(store.load_all)
    if everything:
        chosen = records
    else:
        chosen = [r for r in records if r.batch_id in ids or r.local_id in ids]
        unknown = [i for i in ids if all(i not in (r.batch_id, r.local_id) for r in records)]
        if unknown:
            raise InputError(
                f"No stored batch {', '.join(unknown)} in {store.directory}. "
                "See `crawl4ai-llm-docs batch status` for the stored batches."
            )
    if not chosen:
        print(f"No stored batches in {store.directory}; nothing to cancel.")
        return 0
    failed = 0
    async with _client(config) as client:
        for record in chosen:
            if record.batch_id is None:
                # Uploaded but never created: nothing runs at the provider.
                await trio.to_thread.run_sync(store.remove, record.local_id)
                print(f"Removed the uncreated batch of file {record.input_file_id}.")
                continue
            try:
                batch = await _api(client, config, record).cancel(record.batch_id)
            except AppError as exc:
                failed += 1
                print(f"Could not cancel {record.batch_id}: {exc.message}")
                continue
            print(
                f"Cancelling {batch.id} (now {batch.status}, {batch.counts.completed}/"
                f"{batch.counts.total or record.lines} done). What it finished is collected "
                "by the next run of the same command; the rest is sent again then."
            )
    return 1 if failed else 0


ConfigOption = Annotated[
    Path | None,
    Parameter(name="--config", help="TOML config file (for the API key variable and cache dir)."),
]


@batch_app.command(name="status")
async def status(
    *, config: ConfigOption = None, trust_project_config: TrustProjectConfig = False
) -> int:
    """List the stored batches and what the provider says about each."""
    loaded = load_config(config_file=config, overrides=trust_override(trust_project_config))
    return await _status(loaded.config)


@batch_app.command(name="cancel")
async def cancel(
    *batch_ids: Annotated[str, Parameter(help="Batch ids, as `batch status` shows them.")],
    all_batches: Annotated[
        bool, Parameter(name="--all", negative="", help="Cancel every stored batch.")
    ] = False,
    config: ConfigOption = None,
    trust_project_config: TrustProjectConfig = False,
) -> int:
    """Cancel stored batches at the provider."""
    if not batch_ids and not all_batches:
        raise InputError(
            "Name the batches to cancel (see `crawl4ai-llm-docs batch status`), or use --all."
        )
    loaded = load_config(config_file=config, overrides=trust_override(trust_project_config))
    return await _cancel(loaded.config, list(batch_ids), all_batches)
