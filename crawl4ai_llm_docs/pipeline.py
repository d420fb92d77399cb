"""The run: wires the crawl, LLM and write stages in one nursery (work in progress)."""

from __future__ import annotations

from crawl4ai_llm_docs.config import LoadedConfig
from crawl4ai_llm_docs.run_options import RunOptions
from crawl4ai_llm_docs.urls import read_url_file


async def run_command(options: RunOptions, loaded: LoadedConfig) -> int:
    parsed = read_url_file(options.urls_file)
    print(
        f"{len(parsed.entries)} URLs read from {options.urls_file}; the pipeline is not built yet."
    )
    return 0
