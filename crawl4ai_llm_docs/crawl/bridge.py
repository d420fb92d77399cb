"""One asyncio event loop in a dedicated thread, driven from trio.

crawl4ai (and Playwright under it) are asyncio libraries. Running them on their own loop in
their own thread keeps the trio loop responsive while they parse big pages; trio tasks hand
coroutines over with ``asyncio.run_coroutine_threadsafe`` and are woken through the trio
token. Cancelling the trio task cancels the asyncio task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

T = TypeVar("T")

SHUTDOWN_GRACE = 10.0  # seconds the loop gets to finish its cancelled tasks on close


class AsyncioBridge:
    """Runs coroutine functions on the bridge's asyncio loop and returns their results."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` on the asyncio loop; trio cancellation cancels it there too."""

        async def call() -> T:
            return await fn()

        coro = call()
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: concurrent.futures.Future[T]) -> None:
            # RunFinishedError: the trio run is over, nobody is waiting any more.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()


@asynccontextmanager
async def open_bridge(name: str = "crawl4ai-asyncio") -> AsyncIterator[AsyncioBridge]:
    """Start the loop's thread; on exit cancel what still runs there and stop the thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_serve_loop, args=(loop,), name=name, daemon=True)
    thread.start()
    try:
        yield AsyncioBridge(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        with trio.move_on_after(SHUTDOWN_GRACE, shield=True):
            # abandon_on_cancel: a loop stuck in C code must not hang the trio run.
            await trio.to_thread.run_sync(thread.join, abandon_on_cancel=True)


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                gathered = asyncio.gather(*pending, return_exceptions=True)
                loop.run_until_complete(asyncio.wait_for(gathered, SHUTDOWN_GRACE))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except (TimeoutError, RuntimeError):
            pass  # leftovers that ignore cancellation die with the daemon thread
        finally:
            loop.close()
