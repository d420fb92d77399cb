"""Discovery on the command line: the options both commands share and the ``map`` command.

``crawl4ai-llm-docs ROOT...`` and ``crawl4ai-llm-docs map ROOT...`` take the same discovery
options (``DiscoverFlags``, flattened into each command's options); every option becomes a
``[discover]`` config override with its origin, like the other flags. ``cli.py`` registers
the command with ``register(app)``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import trio
from cyclopts import App, Group, Parameter
from rich.console import Console

from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.config_schema import AppConfig, DiscoverSource
from crawl4ai_llm_docs.errors import InputError

if TYPE_CHECKING:
    from crawl4ai_llm_docs.discover.engine import Discovery
    from crawl4ai_llm_docs.discover.mapper import MapResult

DISCOVER = Group(
    "Discovery (when given root URLs)",
    sort_key=7,
    help="Start from one or more root URLs: pages are found through the site's llms.txt, its "
    "sitemaps and the links of crawled pages, within the root's host and directory, "
    "honouring robots.txt.",
)
SOURCES: tuple[str, ...] = get_args(DiscoverSource)


@Parameter(name="*")
@dataclass(frozen=True)
class DiscoverFlags:
    max_pages: Annotated[
        int | None,
        Parameter(
            name="--max-pages",
            group=DISCOVER,
            help="Pages listed at most [default: 500]; a warning says when this cut discovery short.",
        ),
    ] = None
    max_depth: Annotated[
        int | None,
        Parameter(
            name="--max-depth",
            group=DISCOVER,
            help="Link hops from the root followed at most (1: the root's links only) [default: no limit].",
        ),
    ] = None
    include: Annotated[
        list[str] | None,
        Parameter(
            name="--include",
            negative="",
            group=DISCOVER,
            help="Only list pages whose URL path matches this glob (repeatable), e.g. '/en/stable/api/*'; "
            "also overrides the default exclusions (search, genindex, _sources, _modules, ...).",
        ),
    ] = None
    exclude: Annotated[
        list[str] | None,
        Parameter(
            name="--exclude",
            negative="",
            group=DISCOVER,
            help="Leave out pages whose URL path matches this glob (repeatable); their links are still followed.",
        ),
    ] = None
    whole_site: Annotated[
        bool,
        Parameter(
            name="--whole-site",
            negative="",
            group=DISCOVER,
            help="Scope is the root's whole host, not just its directory.",
        ),
    ] = False
    sources: Annotated[
        str | None,
        Parameter(
            name="--sources",
            group=DISCOVER,
            help="Comma-separated: llms-txt, sitemap, links [default: all three].",
        ),
    ] = None

    def overrides(self) -> dict[str, tuple[Any, str]]:
        found: dict[str, tuple[Any, str]] = {}
        pairs: list[tuple[str, str, Any]] = [
            ("discover.max_pages", "--max-pages", self.max_pages),
            ("discover.max_depth", "--max-depth", self.max_depth),
            ("discover.include", "--include", self.include),
            ("discover.exclude", "--exclude", self.exclude),
            ("discover.whole_site", "--whole-site", True if self.whole_site else None),
            ("discover.sources", "--sources", _sources(self.sources)),
        ]
        for key, flag, value in pairs:
            if value is not None:
                found[key] = (value, f"flag {flag}")
        return found


NO_FLAGS = DiscoverFlags()


def _sources(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SOURCES]
    if unknown or not names:
        raise InputError(
            f"--sources {text!r}: {', '.join(map(repr, unknown)) or 'nothing'} is not a source. "
            f"Give a comma-separated list of {', '.join(SOURCES)}."
        )
    return list(dict.fromkeys(names))


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def split_targets(targets: tuple[str, ...]) -> tuple[Path | None, list[str]]:
    """(URL file, root URLs) from the positional arguments: one file, or root URLs only."""
    if not targets:
        raise InputError(
            "Give a URL file (one URL per line) or one or more http(s) root URLs to start from, "
            "e.g. crawl4ai-llm-docs https://docs.example.com/en/stable/"
        )
    urls = [target for target in targets if _URL.match(target)]
    if not urls:
        if len(targets) > 1:
            raise InputError(
                f"Give one URL file, not {len(targets)} ({', '.join(targets)}); or give root URLs "
                "starting with http:// or https://."
            )
        return Path(targets[0]), []
    if len(urls) != len(targets):
        files = [target for target in targets if target not in urls]
        raise InputError(
            f"Mixed a URL file ({files[0]}) with root URLs: give either one URL file or root URLs."
        )
    return None, [check_root_url(url) for url in urls]


def check_root_url(url: str) -> str:
    from crawl4ai_llm_docs.discover.scope import normalise

    try:
        return normalise(url)
    except ValueError as exc:
        raise InputError(
            f"Root URL {url!r} cannot be used: {exc}. Give an http(s) address such as "
            "https://docs.example.com/en/stable/."
        ) from None


def roots_stem(roots: list[str]) -> str:
    """A file name stem for a run started from roots: host and path, e.g. docs_x_com-en-stable."""
    from urllib.parse import urlsplit

    parts = urlsplit(roots[0])
    words = [(parts.hostname or "site").replace(".", "_")]
    words += [re.sub(r"\.html?$", "", p) for p in parts.path.split("/") if p and p != "index.html"]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(words)).strip("-") or "site"


async def _map_with_progress(
    roots: list[str], config: AppConfig, output: Path | None, console: Console
) -> MapResult:
    """``map_site`` with discovery's counts on the terminal (a line per interval otherwise)."""
    from rich.live import Live

    from crawl4ai_llm_docs.discover.mapper import map_site
    from crawl4ai_llm_docs.observe.live import discovery_line

    holder: list[Discovery] = []
    interval = config.parallel.progress_update_interval

    def line() -> str:
        return "map: " + discovery_line(holder[0].snapshot()) if holder else "map: starting"

    async def show() -> None:
        if console.is_terminal:
            with Live(get_renderable=line, console=console, transient=True):
                await trio.sleep_forever()
        while True:
            await trio.sleep(interval)
            console.print(line())

    async with trio.open_nursery() as nursery:
        if config.logging.progress:
            nursery.start_soon(show)
        result = await map_site(roots, config, output, on_start=holder.append)
        nursery.cancel_scope.cancel()
    return result


def register(app: App) -> None:
    app.command(map_command, name="map")


async def map_command(
    *roots: Annotated[str, Parameter(help="One or more http(s) root URLs to discover from.")],
    output: Annotated[
        Path | None,
        Parameter(
            name=["-o", "--output"],
            help="Write the URL file here [default: standard output].",
        ),
    ] = None,
    config: Annotated[
        Path | None, Parameter(name="--config", help="TOML config file (see the main command).")
    ] = None,
    crawl_concurrency: Annotated[
        int | None,
        Parameter(name="--crawl-concurrency", help="Pages fetched at once, 1-16 [default: 4]."),
    ] = None,
    insecure: Annotated[
        bool,
        Parameter(name="--insecure", negative="", help="Do not verify TLS certificates."),
    ] = False,
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"] | None,
        Parameter(name="--log-level", help="Console log level [default: info]."),
    ] = None,
    no_progress: Annotated[
        bool, Parameter(name="--no-progress", negative="", help="No live progress display.")
    ] = False,
    flags: DiscoverFlags = NO_FLAGS,
) -> int:
    """Discover the pages of a documentation site and write them as a URL file.

    Each URL comes with a comment saying where it was found (root, llms.txt, sitemap with
    its lastmod, or the page linking to it); pages left out are listed as comments with the
    reason. Review and edit the file, then pass it to crawl4ai-llm-docs.
    """
    urls_file, urls = split_targets(roots)
    if urls_file is not None:
        raise InputError(f"map takes root URLs (http:// or https://), not a file ({urls_file}).")
    overrides = flags.overrides()
    if crawl_concurrency is not None:
        overrides["crawl.max_concurrent"] = (crawl_concurrency, "flag --crawl-concurrency")
    if no_progress:
        overrides["logging.progress"] = (False, "flag --no-progress")
    if log_level is not None:
        overrides["logging.level"] = (log_level, "flag --log-level")
    if insecure:
        overrides["crawl.verify_tls"] = (False, "flag --insecure")
    # map sends no secret: a project file's llm.base_url does not matter here.
    loaded = load_config(config_file=config, overrides=overrides, sends_secrets=False)
    if output is not None and output.is_dir():
        raise InputError(
            f"-o {output} is a directory. Give a file path, e.g. {output / 'urls.txt'}."
        )
    from crawl4ai_llm_docs.fetch.credentials import load_credentials
    from crawl4ai_llm_docs.observe.logging import configure_logging

    credentials = load_credentials(loaded.config.crawl, source=loaded.origins.get("crawl.auth", ""))
    console = Console(stderr=True, highlight=False)
    with configure_logging(
        run_id="map",
        json_file=None,
        level=loaded.config.logging.level,
        secrets=credentials.secrets,
        metrics=None,
        console=console,
    ):
        result = await _map_with_progress(urls, loaded.config, output, console)
    where = f" in {result.output}" if output is not None else ""
    console.print(
        f"Listed {result.listed} pages{where} ({result.crawled} crawled; {result.summary}); "
        "the file names each page left out and why."
    )
    sys.stdout.flush()
    return 0
