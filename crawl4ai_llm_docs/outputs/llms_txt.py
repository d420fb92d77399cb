"""``llms.txt`` (the llmstxt.org index) and ``llms-full.txt`` (every page in full).

``llms.txt`` reads, in order: an H1 with the site's name; the summary as a blockquote; an info
paragraph (how many pages, when, what llms-full.txt holds); one H2 per section of the site
(see ``site_structure``) listing ``- [title](url): description`` for every page, with
changelogs, release notes and indexes under ``## Optional`` at the end. The reference parser
(``llms_txt.parse_llms_file``) reads every part: the summary is followed by the info paragraph
because it takes a summary with nothing after it for the info.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from crawl4ai_llm_docs.files import Staging, atomic_text
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.descriptions import describe
from crawl4ai_llm_docs.outputs.markdown import nest_markdown, one_line
from crawl4ai_llm_docs.outputs.site_structure import OPTIONAL_SECTION, SiteStructure, survey

DEFAULT_TITLE = "Documentation"


def reiterable(documents: Iterable[Document]) -> Iterable[Document]:
    """``documents`` when it can be read twice (a list, a ``DocumentSpool``); else an error."""
    if iter(documents) is documents:
        raise TypeError(
            "the writers read the documents twice (titles and sections first): pass a list or "
            "a DocumentSpool, not an iterator"
        )
    return documents


def site_of(documents: Iterable[Document], site: SiteStructure | None) -> SiteStructure:
    return site if site is not None else survey(reiterable(documents))


def heading_title(title: str, site: SiteStructure) -> str:
    """The H1: the title asked for, else the site's name, else a generic one."""
    return one_line(title) or site.name or DEFAULT_TITLE


def page_title(document: Document, site: SiteStructure) -> str:
    """The page's title without the site's suffix; its URL when it has none."""
    return site.clean_title(document.title) or document.url


def default_summary(site: SiteStructure, title: str) -> str:
    """The root page's own description, or one naming the site."""
    if site.root_description:
        return site.root_description
    name = heading_title(title, site)
    pages = f"{site.pages} page{'s' if site.pages != 1 else ''}"
    return f"{name}: {pages} of documentation in Markdown, for language models."


def default_details(
    site: SiteStructure, generated_at: datetime, *, cleaned: bool, optional: bool = False
) -> str:
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pages = f"{site.pages} page{'s' if site.pages != 1 else ''}"
    how = "cleaned by a language model" if cleaned else "as crawled"
    skip = " Pages under Optional (changelogs, indexes) may be skipped." if optional else ""
    return (
        f"Generated from {pages} on {when}. llms-full.txt holds the full text of every page "
        f"listed here, {how}.{skip}"
    )


def _link_url(url: str) -> str:
    """The URL with the characters that would end a Markdown link destination escaped."""
    return quote(url, safe="!#$%&'*+,/:;=?@[]~-._")


def _link_title(title: str) -> str:
    # Brackets would end the link text for simple llms.txt readers; parentheses read the same.
    # A backslash is doubled: before the closing ']' it would escape it (no link at all).
    return title.replace("\\", "\\\\").replace("[", "(").replace("]", ")")


def link_item(document: Document, site: SiteStructure) -> str:
    """The page's line in an llms.txt: ``- [title](url): description``."""
    name = page_title(document, site)
    item = f"- [{_link_title(name)}]({_link_url(document.url)})"
    if description := describe(document, title=name):
        item += f": {description}"
    return item


def render_index(
    title: str, summary: str, details: str, sections: dict[str, list[str]], optional: list[str]
) -> str:
    """An llms.txt from its parts: H1, summary, details, the sections, Optional last."""
    lines = [f"# {title}", ""]
    if one_line(summary):
        lines += [f"> {one_line(summary)}", ""]
    if details.strip():
        lines += [details.strip(), ""]
    if optional:
        sections = {**sections, OPTIONAL_SECTION: optional}
    for name, items in sections.items():
        lines += [f"## {name}", "", *items, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_llms_txt(
    directory: Path,
    documents: Iterable[Document],
    *,
    title: str,
    summary: str,
    details: str = "",
    site: SiteStructure | None = None,
    generated_at: datetime | None = None,
    cleaned: bool = True,
    staging: Staging | None = None,
) -> tuple[Path, Path]:
    """Write ``llms.txt`` and ``llms-full.txt`` into ``directory``.

    ``documents`` in input order and readable twice (unless ``site`` is given); failed ones
    are left out. An empty ``details`` becomes an info paragraph when there is a summary (the
    reference parser needs something after the summary). An error while writing leaves both
    previous files as they were. Memory: one short line per page, never the pages. With
    ``staging`` both are only staged (its ``commit`` puts them in place).
    """
    site = site_of(documents, site)
    heading = heading_title(title, site)
    index_path = directory / "llms.txt"
    full_path = directory / "llms-full.txt"
    sections: dict[str, list[str]] = {}
    optional: list[str] = []
    opener = atomic_text if staging is None else staging.open
    with opener(full_path) as full, opener(index_path) as index:
        full.write(f"# {heading}\n\n")
        if one_line(summary):
            full.write(f"> {one_line(summary)}\n\n")
        for document in documents:
            if document.error is not None:
                continue
            name = page_title(document, site)
            item = link_item(document, site)
            section = site.section(document.url, document.title)
            (optional if section == OPTIONAL_SECTION else sections.setdefault(section, [])).append(
                item
            )
            content = nest_markdown(document.markdown, top=3, title=document.title, also_title=name)
            full.write(f"## {name}\n\nSource: {document.url}\n\n")
            full.write(f"{content}\n\n" if content else "")
        if one_line(summary) and not details.strip():
            when = generated_at or datetime.now(UTC)
            details = default_details(site, when, cleaned=cleaned, optional=bool(optional))
        index.write(render_index(heading, summary, details, sections, optional))
    return index_path, full_path
