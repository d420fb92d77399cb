"""``--llms-txt-per-section``: an llms.txt for every section directory, beside the root one.

By llms.txt v2, a llms.txt in a subdirectory covers the pages under it and the most specific
one wins. Every section of the site (``site_structure``: the first directories below the
folder all pages share, or the hosts when the pages come from several sites) gets one,
listing every page under its directory: its own pages under the section's name, those of its
subdirectories under theirs, changelogs and indexes under ``## Optional`` (v1 readers still
skip it). A file sits at its directory's URL path inside the llms.txt directory
(``/docs/guide/`` -> ``docs/guide/llms.txt``), the tree ``--pages-dir`` writes, so both are
published together at the site's root; the root llms.txt still lists every page. The files
replace the previous set together; a section no longer crawled keeps its old file. Memory:
one short line per page, as for the root file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from crawl4ai_llm_docs.files import Staging
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.descriptions import clean
from crawl4ai_llm_docs.outputs.llms_txt import (
    heading_title,
    link_item,
    page_title,
    render_index,
    site_of,
)
from crawl4ai_llm_docs.outputs.pages_dir import page_path
from crawl4ai_llm_docs.outputs.site_structure import (
    OPTIONAL_SECTION,
    SiteStructure,
    SiteSurvey,
    directories,
    is_index_url,
)

INDEX_NAME = "llms.txt"


class _Section:
    """The pages under one section directory, gathered in one pass over the documents."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.survey = SiteSurvey()  # names the subdirectories, as the site's survey names sections
        self.entries: list[tuple[str, str, str]] = []  # (url, title, llms.txt line)
        self.summary = ""  # what the directory's index page says it is (LLM or meta description)


def section_path(section_directory: tuple[str, ...], *, with_host: bool) -> PurePosixPath:
    """Where the llms.txt of ``section_directory`` goes, inside the llms.txt directory."""
    origin, *segments = section_directory
    url = origin + "".join(f"/{segment}" for segment in segments) + "/"
    return page_path(url, with_host=with_host).parent / INDEX_NAME


def write_section_llms_txt(
    directory: Path,
    documents: Iterable[Document],
    *,
    title: str,
    site: SiteStructure | None = None,
    generated_at: datetime | None = None,
    cleaned: bool = True,
    staging: Staging | None = None,
) -> list[Path]:
    """Write the llms.txt of every section into ``directory``; returns the files written.
    With ``staging`` they are only staged (its ``commit`` puts them in place with the run's
    other outputs); without, they replace the previous set together.

    ``documents`` in input order and readable twice unless ``site`` is given; failed ones are
    left out. None is written when the pages all sit in one folder (no sections).
    """
    site = site_of(documents, site)
    heading = heading_title(title, site)
    sections = {group: _Section(label) for group, label in site.section_directories().items()}
    if not sections:
        return []
    for document in documents:
        group = site.section_directory(document.url) if document.error is None else None
        if group is None:
            continue
        section = sections[group]
        name = page_title(document, site)
        section.survey.add(document.url, name)
        section.entries.append((document.url, name, link_item(document, site)))
        if (
            not section.summary
            and is_index_url(document.url)
            and directories(document.url) == group
        ):
            # As the root's summary: what the page says it is, never a sentence picked from it.
            section.summary = clean(document.description or document.meta_description)
    when = generated_at or datetime.now(UTC)
    written: list[Path] = []
    with Staging() if staging is None else contextlib.nullcontext(staging) as stage:
        for group, section in sections.items():
            if not section.entries:
                continue
            relative = section_path(group, with_host=site.several_sites)
            with stage.open(directory / relative, root=directory) as out:
                out.write(_render(section, heading, relative, when, cleaned=cleaned))
            written.append(directory / relative)
        if staging is None:
            stage.commit()
    return written


def _render(
    section: _Section,
    heading: str,
    relative: PurePosixPath,
    generated_at: datetime,
    *,
    cleaned: bool,
) -> str:
    structure = section.survey.finish()
    if section.label.casefold() not in (
        name.casefold() for name in structure.section_directories().values()
    ):
        structure.root_section = section.label  # the directory's own pages
    lists: dict[str, list[str]] = {}
    optional: list[str] = []
    for url, title, item in section.entries:
        name = structure.section(url, title)
        (optional if name == OPTIONAL_SECTION else lists.setdefault(name, [])).append(item)
    pages = f"{len(section.entries)} page{'s' if len(section.entries) != 1 else ''}"
    summary = section.summary or (
        f"{section.label}, a section of {heading}: {pages} of documentation in Markdown, "
        "for language models."
    )
    root = "../" * (len(relative.parts) - 1) + INDEX_NAME
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = "cleaned by a language model" if cleaned else "as crawled"
    skip = " Pages under Optional (changelogs, indexes) may be skipped." if optional else ""
    details = (
        f"The pages under this directory: {pages}, generated on {when}, {how}. "
        f"[The site's llms.txt]({root}) lists every section.{skip}"
    )
    return render_index(f"{heading} \u2014 {section.label}", summary, details, lists, optional)
