"""Browser mode's request interception: every request Chromium makes is decided first.

Playwright's ``route`` is not called for the hops of a redirect, so interception goes through
the Chrome DevTools Protocol's Fetch domain in a session of our own: it pauses every request,
redirect hops included, until it is continued or failed. Each one is asked of the page's
``Route`` (the same decision as plain HTTP, made on the trio side): the address guard for
every request, and for the main frame's navigations after the first URL (redirects,
JavaScript navigation) also the caller's hop check (discovery: scope and robots.txt). A
refused navigation fails with ``net::ERR_BLOCKED_BY_CLIENT``, and the reason is kept here for
the page's failure message. A request that may go on gets the credentials of its own origin
(``crawl.auth``; none for any other origin, redirect hops included), merged with the cookies
Chromium keeps for it, and pages start with the localStorage of a storage-state file.

Runs on the asyncio loop (crawl4ai's); ``trio.from_thread.run`` from a worker thread asks the
trio side, so the loop itself never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from functools import partial
from typing import Any

import structlog
import trio

from crawl4ai_llm_docs.fetch.cookies import merge_cookie_headers
from crawl4ai_llm_docs.fetch.credentials import NO_CREDENTIALS, Credentials
from crawl4ai_llm_docs.fetch.redirects import Route, refused_message

KEY = "crawl4ai_llm_docs.interception"  # in CrawlerRunConfig.shared_data
_PAUSE_ALL = {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}


class Interception:
    """The decisions for one page's crawl in the browser."""

    def __init__(
        self,
        route: Route,
        start_url: str,
        token: trio.lowlevel.TrioToken,
        credentials: Credentials = NO_CREDENTIALS,
    ) -> None:
        self.route = route
        self.start_url = start_url
        self.token = token
        self.credentials = credentials
        self.refused = ""  # why the main frame's navigation was refused, if it was
        self._main_frame = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def decide(self, url: str, *, navigation: bool) -> str | None:
        """Why ``url`` may not be requested (on the trio side); None when it may."""
        hop = 1 if navigation and url != self.start_url else 0
        ask = partial(trio.from_thread.run, partial(self.route.refusal, url, hop=hop))
        reason: str | None = await asyncio.get_running_loop().run_in_executor(
            None, partial(ask, trio_token=self.token)
        )
        return reason

    def paused(self, session: Any, event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._answer(session, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, session: Any, event: dict[str, Any]) -> None:
        request_id = event["requestId"]
        url = str(event.get("request", {}).get("url", ""))
        frame = str(event.get("frameId", ""))
        document = event.get("resourceType") == "Document"
        if document and not self._main_frame:
            self._main_frame = frame  # the first navigation is the page's own
        navigation = document and frame == self._main_frame
        try:
            reason = await self.decide(url, navigation=navigation)
        except Exception as exc:  # the run is ending: refuse rather than let it through
            reason = f"not checked ({type(exc).__name__})"
        with contextlib.suppress(Exception):  # the page may be closed by now
            if reason is None:
                answer = {"requestId": request_id}
                if credentials := self.credentials.headers_for(url):
                    headers = await _with_credentials(session, event, credentials)
                    answer["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
                await session.send("Fetch.continueRequest", answer)
                return
            if navigation and not self.refused:
                self.refused = refused_message(url, reason, hop=int(url != self.start_url))
            structlog.get_logger().debug("warning", message=f"browser: {url} refused: {reason}")
            await session.send(
                "Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"}
            )


async def _with_credentials(
    session: Any, event: dict[str, Any], credentials: dict[str, str]
) -> dict[str, str]:
    """The request's headers with its origin's credentials; cookies joined to Chromium's own
    (a Cookie header given here replaces the ones Chromium would add)."""
    request = event.get("request", {})
    headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
    names = {name.lower(): name for name in headers}
    for name, value in credentials.items():
        if name.lower() == "cookie":
            jar = await session.send("Network.getCookies", {"urls": [request.get("url", "")]})
            own = "; ".join(f"{c['name']}={c['value']}" for c in jar.get("cookies", []))
            value = merge_cookie_headers(own, value)
        headers.pop(names.get(name.lower(), name), None)
        headers[name] = value
    return headers


def _local_storage_script(credentials: Credentials) -> str:
    """Sets each origin's localStorage from its storage state, on that origin's pages only."""
    stored = {
        origin: dict(entry.local_storage)
        for origin, entry in credentials.by_origin.items()
        if entry.local_storage
    }
    if not stored:
        return ""
    return (
        f"(() => {{ const items = {json.dumps(stored)}[location.origin];"
        " if (!items) return; try { for (const [k, v] of Object.entries(items))"
        " localStorage.setItem(k, v); } catch (e) {} })();"
    )


async def intercept(page: Any, /, *args: Any, **kwargs: Any) -> Any:
    """crawl4ai's ``on_page_context_created`` hook: pause every request of the new page."""
    config = kwargs.get("config")
    context = kwargs.get("context")
    interception = (getattr(config, "shared_data", None) or {}).get(KEY)
    if interception is None or context is None:
        return page
    session = await context.new_cdp_session(page)
    session.on("Fetch.requestPaused", partial(interception.paused, session))
    await session.send("Fetch.enable", _PAUSE_ALL)
    if script := _local_storage_script(interception.credentials):
        await page.add_init_script(script)  # before the page's own scripts, in every document
    return page
