"""``--pages-dir``: one Markdown file per page, at a path that mirrors its URL.

``https://h/guide/install.html`` -> ``guide/install.md``, ``https://h/guide/`` ->
``guide/index.md`` (with the host as the first directory when the pages come from several
sites); with ``output.pages_naming = "page.html.md"`` the URL's path gains ``.md`` instead
(``guide/install.html.md``, ``guide/index.html.md``), as llms.txt serves a page's Markdown. Each file starts with YAML front matter (``title``, ``source``, ``description``,
``crawled_at``, ``changed_at`` when the refresh state knows it, ``tokens``;
``front_matter_fields`` is the one place to add more), then the
page's title as H1 and its Markdown. All files replace the previous ones together, once every
file is complete (``files.Staging``); files of pages no longer crawled are left alone.

A URL cannot choose where its file goes: each segment is decoded once and then made a plain
name (an encoded ``/`` or ``\\``, a dot segment, a control character become ``_``; a leading
dot too), names are cut at 255 bytes and paths at 4,096 (with a hash, so cut names stay
distinct), a directory's name never ends in ``.md`` (so ``/x.html`` and ``/x.md/y`` cannot
clash), two pages never share a file (``-2``, ``-3`` ..., compared as a case- and
normalisation-insensitive file system would), and every target is checked to be inside the
directory, symlinks followed, right before it is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from crawl4ai_llm_docs.files import Staging
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
SUFFIX = ".md"
MAX_PATH_BYTES = 4095  # a whole path (PATH_MAX less its terminating NUL)
# A longer segment is cut (at a character boundary) and given a hash, leaving room in a
# name's 255 bytes (NAME_MAX on Linux, macOS and Windows) for a query's hash, a "-2" of a
# name taken twice and ".md".
SEGMENT_BYTES = 200
HASH_CHARS = 8
# Characters no name may hold: separators (a decoded %2F or a backslash), control
# characters, lone surrogates, and what Windows and macOS refuse.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\ud800-\udfff/\\<>:"|?*]')

FrontMatterValue = str | int


def _digest(text: str, length: int = HASH_CHARS) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode()[:limit].decode("utf-8", "ignore")


def _safe_segment(segment: str, *, directory: bool = False) -> str:
    """One path segment as a name that is nothing but a name: no separator, no dot segment,
    no hidden file, at most ``SEGMENT_BYTES``; a directory's never ends in ".md", so no
    page's file can have a directory's name."""
    segment = _UNSAFE.sub("_", segment).strip()
    if not segment or set(segment) == {"."}:
        return "_"
    if segment.startswith("."):  # no hidden files
        segment = "_" + segment[1:]
    if len(segment.encode()) > SEGMENT_BYTES:
        segment = f"{_cut(segment, SEGMENT_BYTES - HASH_CHARS - 1)}-{_digest(segment)}"
    if directory and segment.casefold().endswith(SUFFIX):
        segment += "_"
    return segment


def page_path(url: str, *, with_host: bool = False, naming: str = "page.md") -> PurePosixPath:
    """The file for ``url``, relative to the pages directory (before ``PagePlanner`` makes it
    unique and fits it into the file system's limits); ``naming`` is ``output.pages_naming``."""
    parts = urlsplit(url)
    # Split first, then decode: an encoded "/" (%2F) stays inside its segment.
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
    if with_host:
        segments.insert(0, parts.netloc.lower())
    name = _safe_segment(segments[-1])
    if parts.query:  # ?page=2 and ?page=3 are different pages
        name += "-" + _digest(parts.query)
    directories = [_safe_segment(segment, directory=True) for segment in segments[:-1]]
    return PurePosixPath(*directories, name + SUFFIX)


def _key(path: PurePosixPath | str) -> str:
    """How a file system that ignores case and Unicode normalisation (macOS, Windows) sees a
    path: two paths with one key are one file there."""
    return unicodedata.normalize("NFC", str(path)).casefold()


class PagePlanner:
    """Gives each page of a run its own file under ``root``: never outside it, never the file
    of another page or of another output, never a name or path the file system cannot take.

    Names are decided by the URLs alone (and the order of the pages, for the ``-2`` of a name
    taken twice), so the same site maps to the same files on every run.
    """

    def __init__(
        self,
        root: Path,
        *,
        with_host: bool,
        reserved: Iterable[Path] = (),
        naming: str = "page.md",
    ) -> None:
        self._with_host = with_host
        self._naming = naming
        resolved = root.resolve()
        # Room for the root, the separator after it, and a "-NNNNN" of a name taken twice.
        self._budget = MAX_PATH_BYTES - len(os.fsencode(resolved)) - 1 - 6
        self._files: set[str] = set()
        self._reserved_dirs: set[str] = set()
        for path in reserved:
            if path.resolve().is_relative_to(resolved):
                relative = path.resolve().relative_to(resolved).as_posix()
                self._files.add(_key(relative))
                self._reserved_dirs.add(_key(relative))

    def _fit(self, path: PurePosixPath) -> PurePosixPath:
        """``path``, or a shorter one when it is too long for the file system: its leading
        directories that fit, then its name cut short with a hash of the whole path."""
        if len(str(path).encode()) <= self._budget:
            return path
        name = f"{_cut(path.stem, 60)}-{_digest(str(path), 16)}{SUFFIX}"
        kept: list[str] = []
        used = len(name.encode())
        for directory in path.parts[:-1]:
            used += len(directory.encode()) + 1
            if used > self._budget:
                break
            kept.append(directory)
        return PurePosixPath(*kept, name)

    def _free_directories(self, path: PurePosixPath) -> PurePosixPath:
        """Rename a directory of ``path`` that another output of the run has as its file."""
        parts = list(path.parts)
        for depth in range(len(parts) - 1):
            while _key(PurePosixPath(*parts[: depth + 1])) in self._reserved_dirs:
                parts[depth] += "_"
        return PurePosixPath(*parts)

    def place(self, url: str) -> PurePosixPath:
        """The file of the page at ``url``, relative to the root."""
        path = self._free_directories(
            self._fit(page_path(url, with_host=self._with_host, naming=self._naming))
        )
        candidate, number = path, 1
        while _key(candidate) in self._files:
            number += 1
            candidate = path.with_name(f"{path.stem}-{number}{SUFFIX}")
        self._files.add(_key(candidate))
        return candidate


# What YAML refuses raw or reads as a line break (JSON already escapes the C0 controls).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _yaml_value(value: FrontMatterValue) -> str:
    if isinstance(value, int):
        return str(value)
    # A JSON string is a YAML double-quoted scalar: any text, quoted and escaped safely, once
    # the characters YAML refuses raw (DEL, C1 controls) are escaped too.
    text = json.dumps(value, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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


def write_pages_dir(
    directory: Path,
    documents: Iterable[Document],
    *,
    site: SiteStructure | None = None,
    generated_at: datetime,
    reserved: Iterable[Path] = (),
    staging: Staging | None = None,
    naming: str = "page.md",
) -> int:
    """Write one file per written page into ``directory``; returns how many.

    ``documents`` must be readable twice unless ``site`` is given (failed pages are skipped).
    A page whose path is one of the ``reserved`` files (the run's other outputs, when they are
    inside ``directory``) gets another name instead of replacing it. With ``staging`` the
    files are only staged (its ``commit`` puts them in place, with the run's other outputs);
    without, they are put in place together before this returns. ``naming`` is
    ``output.pages_naming``.
    """
    site = site_of(documents, site)
    planner = PagePlanner(directory, with_host=site.several_sites, reserved=reserved, naming=naming)
    written = 0
    with contextlib.ExitStack() as stack:
        if staging is None:
            staging = stack.enter_context(Staging())
            commit = staging.commit
        else:
            commit = None
        for document in documents:
            if document.error is not None:
                continue
            title = page_title(document, site)
            body = nest_markdown(document.markdown, top=2, title=document.title, also_title=title)
            fields = front_matter_fields(
                document, title=title, tokens=count_tokens(body), generated_at=generated_at
            )
            target = directory / planner.place(document.url)
            with staging.open(target, root=directory) as out:
                out.write(render_front_matter(fields))
                out.write(f"\n# {title}\n\n")
                out.write(f"{body}\n" if body else "")
            written += 1
        if commit is not None:
            commit()
    return written
