"""Putting chunk results back together: a re-split chunk's halves, then a page's chunks."""

from __future__ import annotations

from collections.abc import Sequence

from crawl4ai_llm_docs.models import ChunkResult

_SOURCE_RANK = {"cache": 0, "llm": 1, "fallback": 2, "raw": 3}


def merge_results(results: Sequence[ChunkResult]) -> ChunkResult:
    """One result from the results of a chunk's halves (as ``split_chunk`` made them), in order.

    The source reported is the least clean one (raw > fallback > llm > cache).
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    first = results[0]
    warnings = [r.warning for r in results if r.warning]
    return ChunkResult(
        page_index=first.page_index,
        chunk_index=first.chunk_index,
        chunk_count=first.chunk_count,
        markdown="\n\n".join(r.markdown.strip() for r in results if r.markdown.strip()),
        description=next((r.description for r in results if r.description), ""),
        source=max((r.source for r in results), key=_SOURCE_RANK.__getitem__),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        warning="; ".join(warnings) if warnings else None,
        llm_failed=any(r.llm_failed for r in results),
    )


def reassemble(results: Sequence[ChunkResult]) -> str:
    """A page's Markdown from its chunk results, joined in ``chunk_index`` order.

    Results with the same index (halves of a re-split chunk) stay in the order given.
    Raises ValueError when results of several pages are mixed or a chunk is missing.
    """
    if not results:
        return ""
    pages = {r.page_index for r in results}
    if len(pages) > 1:
        raise ValueError(f"results of several pages mixed: {sorted(pages)}")
    ordered = sorted(results, key=lambda r: r.chunk_index)  # stable
    count = ordered[0].chunk_count
    missing = set(range(count)) - {r.chunk_index for r in ordered}
    if missing:
        raise ValueError(f"page {ordered[0].page_index}: chunks {sorted(missing)} missing")
    return "\n\n".join(r.markdown.strip() for r in ordered if r.markdown.strip())
