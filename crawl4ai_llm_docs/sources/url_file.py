"""The URL-file source: the file's URLs, in order."""

from __future__ import annotations

from collections.abc import Iterable

import trio

from crawl4ai_llm_docs.models import UrlEntry


async def run(send: trio.MemorySendChannel[UrlEntry], *, entries: Iterable[UrlEntry]) -> None:
    """Send every entry, then end the crawl's input."""
    async with send:
        for entry in entries:
            await send.send(entry)
