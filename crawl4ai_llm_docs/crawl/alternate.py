"""Where a page says its Markdown is, and that Markdown made ready to stand for the page.

A page offers Markdown in three ways (llms.txt v2 and the conventions before it): an HTTP
``Link: <page.md>; rel="alternate"; type="text/markdown"`` header, a ``<link rel="alternate"
type="text/markdown" href=...>`` in its head, or an answer in ``text/markdown`` to a request
that prefers it (``ACCEPT_MARKDOWN_FIRST``). ``beside`` names the ``.md`` files the
conventions put beside a page that advertises none (``crawl.prefer_markdown = "always"``).

Only alternates on the page's own origin are used. CPU-bound helpers: call them from a
worker thread for big pages.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
from msgspec import Struct

# The page itself, Markdown preferred (the header; XHTML kept as before).
ACCEPT_MARKDOWN_FIRST = "text/markdown, text/html;q=0.9, application/xhtml+xml;q=0.9"
# An alternate the page named: Markdown, or what static servers call a .md file.
ACCEPT_ALTERNATE = "text/markdown, text/x-markdown;q=0.9, text/plain;q=0.8, */*;q=0.1"
ALTERNATE_TYPES = (
    "text/markdown",
    "text/x-markdown",
    "text/plain",
    "application/octet-stream",  # nginx's default for .md
)
MARKDOWN_MEDIA = frozenset({"text/markdown", "text/x-markdown"})
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")
HEAD_LIMIT = 256_000  # characters of a page searched for its <head> links
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
# RFC 8288: <uri> followed by ;-separated parameters, values quoted or tokens.
_LINK_VALUE = re.compile(r"\s*<([^>]*)>")
_LINK_PARAM = re.compile(
    r"\s*;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*(\"(?:[^\"\\]|\\.)*\"|[^;,\s]*))?"
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_INLINE_TARGET = re.compile(
    r"(\]\(\s*)(<[^>\n]*>|[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)(?=(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\))"
)
_REFERENCE_DEFINITION = re.compile(r"^( {0,3}\[[^\]]+\]:\s*)(<[^>]*>|\S+)")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")


class Normalised(Struct, frozen=True, kw_only=True):
    markdown: str
    title: str  # its first H1, else its front matter's title, else ""


def link_header_alternates(value: str, base: str) -> list[str]:
    """Markdown alternates named by a ``Link`` header (several headers joined by commas)."""
    found: list[str] = []
    position = 0
    while (link := _LINK_VALUE.match(value, position)) is not None:
        position = link.end()
        params: dict[str, str] = {}
        while (param := _LINK_PARAM.match(value, position)) is not None:
            position = param.end()
            raw = param.group(2) or ""
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(param.group(1).lower(), raw)
        rels = params.get("rel", "").lower().split()
        media = params.get("type", "").split(";")[0].strip().lower()
        if "alternate" in rels and media in MARKDOWN_MEDIA:
            found.append(urljoin(base, link.group(1).strip()))
        comma = value.find(",", position)
        if comma < 0:
            break
        position = comma + 1
    return found


def html_alternates(html: str, base: str) -> list[str]:
    """Markdown alternates named by ``<link rel="alternate" type="text/markdown">`` in the head."""
    head = head_of(html)
    if "markdown" not in head.lower():
        return []  # the common case, decided without parsing
    try:
        doc = lxml.html.document_fromstring(head + "</html>")
    except (ValueError, lxml.etree.ParserError):
        return []
    for element in doc.iter("base"):
        if href := (element.get("href") or "").strip():
            base = urljoin(base, href)
            break
    found = []
    for element in doc.iter("link"):
        rels = (element.get("rel") or "").lower().split()
        media = (element.get("type") or "").split(";")[0].strip().lower()
        href = (element.get("href") or "").strip()
        if "alternate" in rels and media in MARKDOWN_MEDIA and href:
            found.append(urljoin(base, href))
    return found


def head_of(html: str) -> str:
    """The page's ``<head>`` (at most its first ``HEAD_LIMIT`` characters)."""
    head_end = _HEAD_END.search(html, 0, HEAD_LIMIT)
    return html[: head_end.end()] if head_end else html[:HEAD_LIMIT]


def advertised(page_url: str, html: str, link_header: str) -> list[str]:
    """The page's Markdown alternates on its own origin, the Link header's first, each once."""
    candidates = link_header_alternates(link_header, page_url) + html_alternates(html, page_url)
    own = _origin(page_url)
    found = {url.split("#", 1)[0]: None for url in candidates if _origin(url) == own}
    found.pop(page_url.split("#", 1)[0], None)
    return list(found)


def beside(page_url: str) -> list[str]:
    """The ``.md`` files the conventions put beside a page: ``page.html.md`` (the URL with
    ``.md``; ``index.html.md`` for a directory), then ``page.md`` (its extension replaced)."""
    parts = urlsplit(page_url)
    path = parts.path or "/"
    base = f"{parts.scheme}://{parts.netloc}"
    if path.endswith("/"):
        return [f"{base}{path}index.html.md", f"{base}{path}index.md"]
    if path.lower().endswith(MARKDOWN_SUFFIXES):
        return []
    found = [f"{base}{path}.md"]
    stem, dot, extension = path.rpartition(".")
    if dot and "/" not in extension and stem and not stem.endswith("/"):
        found.append(f"{base}{stem}.md")
    return found


def is_markdown_file(url: str) -> bool:
    """A URL that names a Markdown file itself (no HTML version behind it to ask for)."""
    return urlsplit(url).path.lower().endswith(MARKDOWN_SUFFIXES)


def normalise(markdown: str, url: str) -> Normalised:
    """The site's Markdown as a crawled page's: line ends, blank lines and trailing spaces
    tidied, front matter taken off, links and images made absolute against ``url``. Code
    blocks are left as they are."""
    text = markdown.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    front_title = ""
    if found := _FRONT_MATTER.match(text):
        if named := _FRONT_TITLE.search(found.group(1)):
            front_title = named.group(1).strip("\"'")
        text = text[found.end() :]
    out: list[str] = []
    fence = ""
    for line in text.split("\n"):
        if fence:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
            out.append(line)
            continue
        if opening := _FENCE.match(line):
            fence = opening.group(1)
            out.append(line.rstrip())
            continue
        line = line.rstrip()
        if not line and out and not out[-1]:
            continue  # one blank line between blocks
        out.append(_absolute_links(line, url))
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    title = _h1(out)
    if not title and front_title and out:  # the title lived in the front matter only
        title, out = front_title, [f"# {front_title}", "", *out]
    result = "\n".join(out)
    return Normalised(markdown=result + "\n" if result else "", title=title)


def _absolute_links(line: str, base: str) -> str:
    if "](" not in line and "]:" not in line:
        return line
    pieces = _CODE_SPAN.split(line)  # inline code stays as written
    spans = [match.group(0) for match in _CODE_SPAN.finditer(line)]
    out = []
    for index, piece in enumerate(pieces[::2]):
        piece = _INLINE_TARGET.sub(lambda m: m.group(1) + _resolve(m.group(2), base), piece)
        if index == 0:
            piece = _REFERENCE_DEFINITION.sub(
                lambda m: m.group(1) + _resolve(m.group(2), base), piece
            )
        out.append(piece)
        if index < len(spans):
            out.append(spans[index])
    return "".join(out)


def _resolve(target: str, base: str) -> str:
    bracketed = target.startswith("<") and target.endswith(">")
    inner = target[1:-1] if bracketed else target
    if not inner or inner.startswith("#"):
        return target  # a place on the page itself
    resolved = urljoin(base, inner)
    return f"<{resolved}>" if bracketed else resolved


def _h1(lines: list[str]) -> str:
    fence = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fence = not fence
        elif not fence and (heading := _ATX_H1.match(line)):
            return heading.group(1).strip()
        elif (
            not fence
            and line.strip()
            and number + 1 < len(lines)
            and _SETEXT_H1.match(lines[number + 1])
        ):
            return line.strip()
    return ""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or ""), None if port == default else port
