"""The URL-file source: the file's URLs, in order, and nothing the crawl finds."""

from __future__ import annotations

from collections.abc import Iterable

import trio

from crawl4ai_llm_docs.models import Page, UrlEntry


async def run(
    receive: trio.MemoryReceiveChannel[Page],
    send: trio.MemorySendChannel[UrlEntry],
    *,
    entries: Iterable[UrlEntry],
) -> None:
    """Send every entry, then end the crawl's input; crawled pages coming back are dropped.

    The pages are read while the entries are sent: the crawl stage hands each page back
    before taking the next URL, so a source that stopped reading would stall it.
    """
    async with receive, send, trio.open_nursery() as nursery:
        nursery.start_soon(_drop, receive)
        for entry in entries:
            await send.send(entry)
        await send.aclose()  # the crawl stage finishes and closes what ``receive`` reads


async def _drop(receive: trio.MemoryReceiveChannel[Page]) -> None:
    async for _ in receive:
        pass
