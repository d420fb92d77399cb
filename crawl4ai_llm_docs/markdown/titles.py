"""Page titles and the site names around them: ``csvcut — csvkit 1.0.7 documentation``.

One rule for the whole tool: a title is split at one of ``SEPARATORS`` into the page's own name
and an affix (the site's name, before or after it). The crawl stage uses it on one page (the
affix goes when the rest is the page's own heading), the outputs over all pages (the affix most
titles share is the site's name).
"""

from __future__ import annotations

from typing import NamedTuple

# Between a page's title and the site's name, most common first.
SEPARATORS = (" \u2014 ", " \u2013 ", " | ", " · ", " - ", " :: ", " » ", " / ")


class Affix(NamedTuple):
    kind: str  # "suffix" or "prefix"
    separator: str
    text: str


def affixes(title: str) -> set[Affix]:
    """Every way ``title`` splits into a name and a site affix (none when it has no separator)."""
    found: set[Affix] = set()
    for separator in SEPARATORS:
        if separator in title:
            head, _, tail = title.partition(separator)
            rest_head, _, last = title.rpartition(separator)
            if last.strip() and rest_head.strip():
                found.add(Affix("suffix", separator, last.strip()))
            if head.strip() and tail.strip():
                found.add(Affix("prefix", separator, head.strip()))
    return found


def without_affix(title: str, affix: Affix) -> str:
    """``title`` without ``affix``; "" when it does not carry it (or nothing would be left)."""
    if affix.kind == "suffix" and title.endswith(affix.separator + affix.text):
        return title[: -len(affix.separator + affix.text)].strip()
    if affix.kind == "prefix" and title.startswith(affix.text + affix.separator):
        return title[len(affix.text + affix.separator) :].strip()
    return ""


def split_site_name(title: str, heading: str) -> tuple[str, str]:
    """(page name, site name) of one page's ``title``, given the page's own main ``heading``.

    The affix goes only when what is left is the heading itself, so a title that merely
    contains a separator ("Input / Output") is kept whole: ("Input / Output", "").
    """
    title, wanted = " ".join(title.split()), " ".join(heading.split()).casefold()
    if not wanted:
        return title, ""
    for affix in sorted(affixes(title), key=lambda a: (a.kind != "suffix", -len(a.text))):
        name = without_affix(title, affix)
        if name and name.casefold() == wanted:
            return name, affix.text
    # One page can also say "Name: Site" (gtk-doc) or "Name (Site)" (Texinfo): with the
    # heading to confirm it, these are the site's name too.
    for name, site in (title.partition(": ")[::2], _parenthesised(title)):
        if site and name.strip().casefold() == wanted:
            return name.strip(), site.strip()
    return title, ""


def _parenthesised(title: str) -> tuple[str, str]:
    """("Name", "Site") of "Name (Site)"; ("", "") otherwise."""
    if not title.endswith(")") or " (" not in title:
        return "", ""
    name, _, site = title[:-1].rpartition(" (")
    return name, site
