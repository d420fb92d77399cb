"""``crawl4ai-llm-docs validate FILE_OR_URL...``: check llms.txt files against the format.

Faults go to standard output, one per line as ``WHERE:LINE: message [code]`` (or as JSON with
``--json``), then a line per file. Exit 0: no fault; 1: faults; 2: an input that cannot be
read at all (one message).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec
import trio
from cyclopts import Parameter
from rich.console import Console

from crawl4ai_llm_docs.cli.flags import ConfigFile, flag_overrides
from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.config_schema import AppConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.fetch.guard import Resolver, guard_for
from crawl4ai_llm_docs.fetch.http import open_client
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.validate.faults import Fault, by_line
from crawl4ai_llm_docs.validate.reading import Reading, read
from crawl4ai_llm_docs.validate.source import Source, expand, fetch_source, is_url, read_file

EXIT_CODES_HELP = """\
Exit codes: 0 no fault; 1 faults (one line each: WHERE:LINE: message [code]); 2 an input that
cannot be read (missing, not text, unreachable, not answering 2xx)."""


class FileReport(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    url: str
    title: str
    sections: int
    links: int
    faults: list[Fault]


async def validate(
    *targets: Annotated[
        str,
        Parameter(
            name="FILE_OR_URL",
            help="An llms.txt file, a directory (every llms.txt under it), or an http(s) URL.",
        ),
    ],
    links: Annotated[
        bool,
        Parameter(
            name="--links",
            negative="",
            help="Also fetch every link: each must answer 200 and be allowed by the host's "
            "robots.txt (crawl.max_concurrent at a time, Crawl-delay honoured).",
        ),
    ] = False,
    json: Annotated[
        bool,
        Parameter(name="--json", negative="", help="Print the faults as JSON."),
    ] = False,
    config: ConfigFile = None,
    insecure: Annotated[
        bool,
        Parameter(name="--insecure", negative="", help="Do not verify TLS certificates."),
    ] = False,
) -> int:
    """Check llms.txt files (ours or anyone's) against the llmstxt.org format as the reference
    parser reads it: one H1, a blockquote summary, H2 sections that list only links, each
    with a description, UTF-8, served as text/plain or text/markdown."""
    if not targets:
        raise InputError("Give an llms.txt file, a directory of them, or an http(s) URL.")
    overrides = flag_overrides(
        insecure=("crawl.verify_tls", "--insecure", False if insecure else None)
    )
    loaded = load_config(config_file=config, overrides=overrides)
    names = await trio.to_thread.run_sync(expand, list(targets))
    from crawl4ai_llm_docs.observe.logging import configure_logging

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    with configure_logging(
        run_id="validate",
        json_file=None,
        level=loaded.config.logging.level,
        secrets=[],
        metrics=None,
        console=errors,
    ):
        async with open_client(loaded.config.crawl) as client:
            sources = [
                await _fetch(client, name, loaded.config.crawl.page_timeout)
                if is_url(name)
                else await trio.to_thread.run_sync(read_file, name)
                for name in names
            ]
            readings = [read(source.text) for source in sources]
            link_faults: list[list[Fault]] = [[] for _ in sources]
            if links:
                link_faults = await _check_links(client, sources, readings, loaded.config, errors)
    reports = [
        FileReport(
            name=source.name,
            url=source.url,
            title=reading.title,
            sections=len(reading.sections),
            links=len(reading.links),
            faults=by_line(source.faults + reading.faults + extra),
        )
        for source, reading, extra in zip(sources, readings, link_faults, strict=True)
    ]
    if json:
        print(msgspec.json.encode(reports).decode())
    else:
        _print(reports, links_checked=links)
    return 1 if any(report.faults for report in reports) else 0


async def _fetch(client: httpx.AsyncClient, url: str, seconds: float) -> Source:
    try:
        with trio.fail_after(seconds):
            return await fetch_source(client, url)
    except trio.TooSlowError:
        raise InputError(
            f"{url} did not answer within {seconds:g} s (crawl.page_timeout). Check the address, "
            "or raise crawl.page_timeout."
        ) from None


def _absolute(source: Source, url: str) -> str | None:
    """The link as an absolute http(s) URL, or None when it cannot be fetched."""
    if source.url:
        url = urljoin(source.url, url)
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else None


async def _route(sources: list[Source], links: list[str]) -> Route:
    """Where link checks may go: the address classes of each fetched llms.txt's own host (an
    llms.txt from the Internet cannot make us probe the LAN or a cloud metadata address), and
    of the links a local file names, since the user chose that file. Redirects leaving those
    classes are refused either way."""
    resolver = Resolver()
    fetched = [source.url for source in sources if source.url]
    local = links if any(not source.url for source in sources) else []
    return Route(guard=await guard_for([*fetched, *local], resolver), resolver=resolver)


async def _check_links(
    client: httpx.AsyncClient,
    sources: list[Source],
    readings: list[Reading],
    config: AppConfig,
    console: Console,
) -> list[list[Fault]]:
    """Faults of every file's links, each distinct URL fetched once for all the files."""
    from crawl4ai_llm_docs.validate.links import check_links

    wanted = [
        url
        for source, reading in zip(sources, readings, strict=True)
        for link in reading.links
        if (url := _absolute(source, link.url)) is not None
    ]
    distinct = len(set(url.split("#", 1)[0] for url in wanted))
    console.print(f"Checking {distinct} link{'s' if distinct != 1 else ''}...")
    results = await check_links(
        client,
        wanted,
        crawl=config.crawl,
        respect_robots=config.discover.respect_robots,
        route=await _route(sources, wanted),
    )
    found: list[list[Fault]] = []
    for source, reading in zip(sources, readings, strict=True):
        faults = []
        for link in reading.links:
            url = _absolute(source, link.url)
            result = results.get(url.split("#", 1)[0]) if url else None
            if result is not None and result.code:
                faults.append(
                    Fault(
                        code=result.code,
                        line=link.line,
                        url=url or "",
                        message=f"{url}: {result.reason}",
                    )
                )
        found.append(faults)
    return found


def _print(reports: list[FileReport], *, links_checked: bool) -> None:
    for report in reports:
        for fault in report.faults:
            where = f"{report.name}:{fault.line}" if fault.line else report.name
            print(f"{where}: {fault.message} [{fault.code}]")
        shape = (
            f"{report.sections} section{'s' if report.sections != 1 else ''}, "
            f"{report.links} link{'s' if report.links != 1 else ''}"
        )
        moved = f" (from {report.url})" if report.url and report.url != report.name else ""
        if report.faults:
            count = len(report.faults)
            print(f"{report.name}{moved}: {count} fault{'s' if count != 1 else ''} ({shape})")
        else:
            answered = ", every link answers 200" if links_checked and report.links else ""
            print(f"{report.name}{moved}: valid ({shape}{answered})")
    bad = sum(1 for report in reports if report.faults)
    total = sum(len(report.faults) for report in reports)
    if len(reports) > 1 and not bad:
        print(f"{len(reports)} files, all valid")
    elif len(reports) > 1:
        print(
            f"{len(reports)} files: {len(reports) - bad} valid, {bad} with faults "
            f"({total} fault{'s' if total != 1 else ''})"
        )
