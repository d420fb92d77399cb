"""``--pages-dir``: one Markdown file per page, at a path that mirrors its URL.

``https://h/guide/install.html`` -> ``guide/install.md``, ``https://h/guide/`` ->
``guide/index.md`` (with the host as the first directory when the pages come from several
sites); with ``output.pages_naming = "page.html.md"`` the URL's path gains ``.md`` instead
(``guide/install.html.md``, ``guide/index.html.md``), as llms.txt serves a page's Markdown. Each file starts with YAML front matter (``title``, ``source``, ``description``,
``crawled_at``, ``changed_at`` when the refresh state knows it, ``tokens``;
``front_matter_fields`` is the one place to add more), then the
page's title as H1 and its Markdown. All files replace the previous ones together, once every
file is complete; files of pages no longer crawled are left alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from crawl4ai_llm_docs.files import AtomicBatch
from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.descriptions import describe
from crawl4ai_llm_docs.outputs.llms_txt import page_title, site_of
from crawl4ai_llm_docs.outputs.markdown import nest_markdown
from crawl4ai_llm_docs.outputs.site_structure import SiteStructure

# Page extensions replaced by .md; any other suffix (".1", ".v2") is part of the name.
PAGE_EXTENSIONS = frozenset(
    {".html", ".htm", ".xhtml", ".shtml", ".php", ".asp", ".aspx", ".jsp", ".md", ".txt"}
)
MAX_SEGMENT = (
    120  # characters; longer names are cut and given a hash (file systems allow 255 bytes)
)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"\\|?*]')

FrontMatterValue = str | int


def _safe_segment(segment: str) -> str:
    segment = _UNSAFE.sub("_", segment).strip()
    if not segment or set(segment) == {"."}:
        return "_"
    if segment.startswith("."):  # no hidden files
        segment = "_" + segment[1:]
    if len(segment) > MAX_SEGMENT:
        digest = hashlib.sha1(segment.encode()).hexdigest()[:8]
        segment = f"{segment[: MAX_SEGMENT - 9]}-{digest}"
    return segment


def page_path(url: str, *, with_host: bool = False, naming: str = "page.md") -> PurePosixPath:
    """The file for ``url``, relative to the pages directory."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments or parts.path.endswith("/"):
        segments.append("index.html" if naming == "page.html.md" else "index")
    elif naming == "page.html.md":  # the URL's own name, .md appended
        if segments[-1].lower().endswith(".md"):
            segments[-1] = segments[-1][:-3]
    else:
        stem, dot, extension = segments[-1].rpartition(".")
        if dot and stem and f".{extension.lower()}" in PAGE_EXTENSIONS:
            segments[-1] = stem
    if parts.query:  # ?page=2 and ?page=3 are different pages
        segments[-1] += "-" + hashlib.sha1(parts.query.encode()).hexdigest()[:8]
    if with_host:
        segments.insert(0, parts.netloc.lower())
    safe = [_safe_segment(segment) for segment in segments]
    return PurePosixPath(*safe[:-1], safe[-1] + ".md")


def _yaml_value(value: FrontMatterValue) -> str:
    if isinstance(value, int):
        return str(value)
    # A JSON string is a YAML double-quoted scalar: any text, quoted and escaped safely.
    return json.dumps(value, ensure_ascii=False)


def render_front_matter(fields: Mapping[str, FrontMatterValue]) -> str:
    lines = ["---", *(f"{key}: {_yaml_value(value)}" for key, value in fields.items()), "---"]
    return "\n".join(lines) + "\n"


def front_matter_fields(
    document: Document, *, title: str, tokens: int, generated_at: datetime
) -> dict[str, FrontMatterValue]:
    """The front matter of a page's file, in order (extend here)."""
    crawled = document.fetched_at or generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields: dict[str, FrontMatterValue] = {
        "title": title,
        "source": document.url,
        "source_format": document.source_format,  # html (converted) or the site's markdown
        "description": describe(document, title=title),
        "crawled_at": crawled,
    }
    if document.changed_at:  # known when the refresh state is kept (the cache is on)
        fields["changed_at"] = document.changed_at
    fields["tokens"] = tokens
    return fields


def _unique(path: PurePosixPath, used: set[str]) -> PurePosixPath:
    """``path``, or ``name-2.md``... when another page already has it (compared ignoring case,
    for case-insensitive file systems)."""
    candidate, number = path, 1
    while str(candidate).casefold() in used:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    used.add(str(candidate).casefold())
    return candidate


def write_pages_dir(
    directory: Path,
    documents: Iterable[Document],
    *,
    site: SiteStructure | None = None,
    generated_at: datetime,
    reserved: Iterable[Path] = (),
    naming: str = "page.md",
) -> int:
    """Write one file per written page into ``directory``; returns how many.

    ``documents`` must be readable twice unless ``site`` is given (failed pages are skipped).
    A page whose path is one of the ``reserved`` files (the run's other outputs, when they are
    inside ``directory``) gets another name instead of replacing it. ``naming`` is
    ``output.pages_naming``.
    """
    site = site_of(documents, site)
    with_host = site.several_sites
    used: set[str] = set()
    root = directory.resolve()
    for path in reserved:
        if path.resolve().is_relative_to(root):
            used.add(path.resolve().relative_to(root).as_posix().casefold())
    written = 0
    with AtomicBatch(sync_each=False) as batch:
        for document in documents:
            if document.error is not None:
                continue
            title = page_title(document, site)
            body = nest_markdown(document.markdown, top=2, title=document.title, also_title=title)
            fields = front_matter_fields(
                document, title=title, tokens=count_tokens(body), generated_at=generated_at
            )
            relative = page_path(document.url, with_host=with_host, naming=naming)
            target = directory / _unique(relative, used)
            with batch.open(target) as out:
                out.write(render_front_matter(fields))
                out.write(f"\n# {title}\n\n")
                out.write(f"{body}\n" if body else "")
            written += 1
        batch.commit()
    return written
