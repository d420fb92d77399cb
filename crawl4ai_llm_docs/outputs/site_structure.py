"""What the pages say about their site: its name, the suffix every title repeats, its sections.

A first pass over the finished documents (``survey``) keeps only small aggregates (counts of
title affixes and site names, the directories seen, the titles of index pages), so it costs
memory in the number of directories, not of pages. The ``SiteStructure`` it returns answers,
for any page, its title without the site's suffix and the section it belongs to:

- the site's name: ``output.title``, else the pages' ``og:site_name``, else the affix most
  titles share (``Intro — Python 3.11 documentation``), else the root page's title;
- sections: the first URL directory below the folder all pages share (pages in that folder
  itself are "Docs"), named after the directory's index page, in the order met;
- "Optional" (the llms.txt name for links a reader may skip): changelogs, release notes,
  indexes, search and legal pages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from crawl4ai_llm_docs.markdown.titles import SEPARATORS, Affix
from crawl4ai_llm_docs.markdown.titles import affixes as _affixes
from crawl4ai_llm_docs.models import Document

ROOT_SECTION = "Docs"
ROOT_NAMES = (ROOT_SECTION, "Overview", "Other pages", "Pages")
OPTIONAL_SECTION = "Optional"
# An affix counts as the site's when at least this share of titled pages carries it.
AFFIX_SHARE = 0.5
_MAX_COUNTED = 1_000  # distinct affixes / site names counted: bounded memory on odd sites
INDEX_FILES = frozenset(
    {"index.html", "index.htm", "index.xhtml", "index.php", "index.md", "default.aspx"}
)
_SECONDARY_STEMS = frozenset(
    {
        "changelog",
        "changes",
        "history",
        "news",
        "whatsnew",
        "whats-new",
        "release-notes",
        "releasenotes",
        "releases",
        "modindex",
        "py-modindex",
        "search",
        "404",
        "license",
        "copyright",
    }
)
_SECONDARY_DIRECTORIES = frozenset(
    {"changelog", "changes", "whatsnew", "whats-new", "release-notes", "releases", "news"}
)
_SECONDARY_TITLE_START = re.compile(
    r"^(?:what[\u2019']?s new|release notes|changelog|change ?log|changes (?:in|for)\b|version "
    r"history|history of changes)",
    re.IGNORECASE,
)
_SECONDARY_TITLES = frozenset(
    {
        "index",
        "general index",
        "module index",
        "python module index",
        "search",
        "search page",
        "changes",
        "history",
        "news",
        "license",
        "licence",
        "copyright",
        "page not found",
        "404",
    }
)
_SPLIT_TITLE = re.compile("|".join(re.escape(separator) for separator in SEPARATORS))


def directories(url: str) -> tuple[str, ...]:
    """``https://h/docs/guide/install`` -> ``("https://h", "docs", "guide")``: the last path
    segment is the page itself, not a directory (unless the path ends with ``/``)."""
    parts = urlsplit(url)
    segments = parts.path.split("/")[:-1]
    return (f"{parts.scheme}://{parts.netloc.lower()}", *(s for s in segments if s))


def _last_segment(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]).lower()


def is_index_url(url: str) -> bool:
    """A directory's own page: ``guide/`` or ``guide/index.html``."""
    last = _last_segment(url)
    return not last or last in INDEX_FILES


def is_secondary(url: str, title: str) -> bool:
    """Changelogs, release notes, indexes, search and legal pages: the llms.txt "Optional"."""
    stem = _last_segment(url).rsplit(".", 1)[0]
    if stem in _SECONDARY_STEMS or stem.startswith("genindex"):
        return True
    if any(unquote(s).lower() in _SECONDARY_DIRECTORIES for s in directories(url)[1:]):
        return True
    head = _SPLIT_TITLE.split(" ".join(title.split()), maxsplit=1)[0].strip()
    return head.casefold() in _SECONDARY_TITLES or bool(_SECONDARY_TITLE_START.match(head))


def _humanise(segment: str) -> str:
    if "://" in segment:  # pages from several sites: the site is the section
        name = urlsplit(segment).netloc
    else:
        name = " ".join(unquote(segment).replace("-", " ").replace("_", " ").split())
    return (name[:1].upper() + name[1:]) or segment


class SiteStructure:
    """Titles and sections for the pages a ``SiteSurvey`` saw."""

    def __init__(
        self,
        *,
        name: str,
        affix: Affix | None,
        site_name: str,
        prefix: int,
        section_names: dict[tuple[str, ...], str],
        sections: int,
        root_description: str,
        pages: int,
    ) -> None:
        self.name = name  # the H1: may be "" when nothing names the site
        self.affix = affix
        self._site_name = site_name
        self._prefix = prefix
        self._section_names = section_names
        self.sections = sections  # how many distinct sections the pages fall into
        self.root_section = ROOT_SECTION  # the name of the pages in the shared folder itself
        self.root_description = root_description
        self.pages = pages

    def clean_title(self, title: str) -> str:
        """``title`` without the site's name before or after it (the whole title if that is all)."""
        title = " ".join(title.split())
        cuts: list[Affix] = []
        if self.affix is not None:
            cuts.append(self.affix)
        if self._site_name:
            cuts += [Affix(k, s, self._site_name) for k in ("suffix", "prefix") for s in SEPARATORS]
        for affix in cuts:
            if affix.kind == "suffix" and title.endswith(affix.separator + affix.text):
                stripped = title[: -len(affix.separator + affix.text)].strip()
            elif affix.kind == "prefix" and title.startswith(affix.text + affix.separator):
                stripped = title[len(affix.text + affix.separator) :].strip()
            else:
                continue
            if stripped:
                return stripped
        return title

    @property
    def several_sites(self) -> bool:
        """The pages come from more than one site (scheme and host): nothing is shared."""
        return self.pages > 0 and self._prefix == 0

    def _group(self, url: str) -> tuple[str, ...]:
        found = directories(url)
        return found[: self._prefix + 1] if len(found) > self._prefix else found[: self._prefix]

    def section_directories(self) -> dict[tuple[str, ...], str]:
        """Every section's directory (``("https://h", "docs", "guide")``) and its name."""
        return dict(self._section_names)

    def section_directory(self, url: str) -> tuple[str, ...] | None:
        """The section directory the page lies under, whatever it is listed under (Optional
        pages too); None for the pages of the shared folder itself."""
        group = self._group(url)
        return group if group in self._section_names else None

    def section(self, url: str, title: str) -> str:
        """The section the page is listed under (``OPTIONAL_SECTION`` for secondary pages)."""
        if is_secondary(url, title):
            return OPTIONAL_SECTION
        return self._section_names.get(self._group(url), self.root_section)


class SiteSurvey:
    """The first pass: feed every written page to ``add``, then ``finish``."""

    def __init__(self) -> None:
        self.pages = 0
        self._titled = 0
        self._affixes: Counter[Affix] = Counter()
        self._site_names: Counter[str] = Counter()
        self._prefix: tuple[str, ...] | None = None
        self._primary_dirs: set[tuple[str, ...]] = set()  # directories of non-optional pages
        self._has_secondary = False
        self._index_titles: dict[tuple[str, ...], str] = {}
        self._root: tuple[int, str, str] | None = None  # (depth, title, description)

    def add(self, url: str, title: str, *, site_name: str = "", description: str = "") -> None:
        self.pages += 1
        title = " ".join(title.split())
        found = directories(url)
        self._prefix = found if self._prefix is None else _common(self._prefix, found)
        if is_secondary(url, title):
            self._has_secondary = True
        else:
            self._primary_dirs.add(found)
        if title:
            self._titled += 1
            for affix in _affixes(title):
                if affix in self._affixes or len(self._affixes) < _MAX_COUNTED:
                    self._affixes[affix] += 1
        name = " ".join(site_name.split())
        if name and (name in self._site_names or len(self._site_names) < _MAX_COUNTED):
            self._site_names[name] += 1
        if is_index_url(url) and title:
            self._index_titles.setdefault(found, title)
            if self._root is None or len(found) < self._root[0]:
                self._root = (len(found), title, " ".join(description.split()))

    def _affix(self) -> Affix | None:
        if not self._affixes:
            return None
        # Most pages; then the longer text (" - " splits inside a name too); then suffixes.
        affix, count = max(
            self._affixes.items(),
            key=lambda item: (item[1], len(item[0].text), item[0].kind == "suffix"),
        )
        if count < 2 or count < AFFIX_SHARE * self._titled:
            return None
        return affix

    def finish(self, *, title: str = "") -> SiteStructure:
        affix = self._affix()
        site_name = self._site_names.most_common(1)[0][0] if self._site_names else ""
        root_title = self._root[1] if self._root else ""
        name = " ".join(title.split()) or site_name or (affix.text if affix else "") or root_title
        prefix = len(self._prefix or ())
        structure = SiteStructure(
            name=name,
            affix=affix,
            site_name=site_name,
            prefix=prefix,
            section_names={},
            sections=0,
            root_description=self._root[2] if self._root else "",
            pages=self.pages,
        )
        names: dict[tuple[str, ...], str] = {}
        used: set[str] = {OPTIONAL_SECTION.casefold()}
        groups = {found[: prefix + 1] for found in self._primary_dirs if len(found) > prefix}
        for group in sorted(groups):
            index_title = self._index_titles.get(group, "")
            label = structure.clean_title(index_title) if index_title else ""
            if not label or label.casefold() in used:
                label = _humanise(group[-1])
            if label.casefold() == OPTIONAL_SECTION.casefold():
                label = f"{label} pages"  # "Optional" means "may be skipped" in llms.txt
            if label.casefold() in used:
                label = f"{label} ({unquote(group[-1])})"
            used.add(label.casefold())
            names[group] = label
        structure._section_names = names
        # The folder's own pages are "Docs", unless a directory has that name ("/docs/").
        structure.root_section = next(name for name in ROOT_NAMES if name.casefold() not in used)
        root_pages = any(len(found) <= prefix for found in self._primary_dirs)
        structure.sections = len(groups) + root_pages + self._has_secondary
        return structure


def _common(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    length = min(len(first), len(second))
    for position in range(length):
        if first[position] != second[position]:
            return first[:position]
    return first[:length]


def survey(documents: Iterable[Document], *, title: str = "") -> SiteStructure:
    """The first pass over ``documents`` (failed ones are skipped)."""
    pages = SiteSurvey()
    for document in documents:
        if document.error is None:
            pages.add(
                document.url,
                document.title,
                site_name=document.site_name,
                description=document.description or document.meta_description,
            )
    return pages.finish(title=title)
