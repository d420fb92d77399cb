"""The local docs site's Markdown: each generated page's own Markdown, and how it is offered.

``SiteConfig.markdown`` chooses how pages offer it, one way at a time, as sites do:
``link`` (``<link rel="alternate" type="text/markdown">`` in the head), ``header`` (an HTTP
``Link:`` header), ``negotiate`` (the page's URL answers in Markdown to an Accept header that
prefers it) or ``beside`` (``.md`` files served beside the pages, advertised nowhere). In every
mode but ``none`` both conventional names are served: ``page-000.html.md`` and
``page-000.md``. ``markdown_without_code`` lists pages whose Markdown lacks their last code
block (a ``.md`` that is not faithful to its HTML).
"""

from __future__ import annotations

from crawl4ai_llm_docs.testing.site.pages import page_content, page_index

MARKDOWN = "text/markdown; charset=utf-8"


def generated_markdown(
    index: int,
    *,
    pages: int = 28,
    sections: int = 3,
    paragraphs: int = 3,
    revision: int = 0,
    without_code: bool = False,
) -> str:
    """Page ``index`` written in Markdown by its author: what its HTML shows, no chrome."""
    content = page_content(index, pages=pages, sections=sections, paragraphs=paragraphs)
    lines = [f"# {content.title}", ""]
    if revision:  # as ``http.revised`` edits the HTML
        lines += [f"Revision {revision}: this page was edited.", ""]
    lines += [
        f"Call `configure_{index}()` before anything else; see [the next page]"
        f"({content.next_page}).",
        "",
    ]
    for number, section in enumerate(content.sections):
        lines += [f"## {section.heading}", ""]
        for words, name, emphasised in section.paragraphs:
            lines += [f"{words} with `{name}` and *{emphasised}*.", ""]
        if not (without_code and number == len(content.sections) - 1):
            lines += ["```python", section.code, "```", ""]
        lines += ["| Name | Default | Meaning |", "| --- | --- | --- |"]
        lines += [
            f"| `{name}` | {default} | {meaning} |" for name, default, meaning in section.rows
        ]
        lines.append("")
    return "\n".join(lines)


def markdown_page(path: str) -> tuple[str, int] | None:
    """(HTML page path, index) of a Markdown file path (``/docs/page-001.html.md``,
    ``/docs/page-001.md``); None for any other path."""
    if not path.endswith(".md"):
        return None
    stem = path.removesuffix(".md")
    html = stem if stem.endswith(".html") else stem + ".html"
    index = page_index(html)
    return (html, index) if index is not None else None


def alternate_path(path: str) -> str:
    """Where a page's Markdown is: the page's URL with ``.md`` appended (llms.txt's rule)."""
    return path + ".md"


def link_element(path: str) -> bytes:
    href = alternate_path(path).rsplit("/", 1)[-1]  # relative, as generators write it
    return f'<link rel="alternate" type="text/markdown" href="{href}">'.encode()


def link_header(path: str) -> tuple[bytes, bytes]:
    value = f'<{alternate_path(path)}>; rel="alternate"; type="text/markdown"'
    return b"link", value.encode()


def offered_in_page(mode: str, path: str, body: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The HTML page ``path`` as it offers its Markdown in ``mode``: its body and headers."""
    if mode == "link":
        return body.replace(b"</head>", link_element(path) + b"</head>", 1), []
    if mode == "header":
        return body, [link_header(path)]
    if mode == "negotiate":  # the same URL answers both: caches must key on Accept
        return body, [(b"vary", b"accept")]
    return body, []


def prefers_markdown(accept: str) -> bool:
    """Whether an Accept header ranks text/markdown above HTML (quality values honoured)."""
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = q
    markdown = quality.get("text/markdown", 0.0)
    html = max(quality.get(media, 0.0) for media in ("text/html", "text/*", "*/*"))
    return markdown > 0 and markdown > html
