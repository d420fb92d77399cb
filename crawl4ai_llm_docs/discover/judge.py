"""The verdict on a crawled page: listed, or left out with a kind and a reason.

Judged in emission order (``engine``), so it is the same on every run. What a page *is*
decides as much as its address: a page that shows itself to be a search page or a generated
index (``PageLinks.generated``, read from its HTML) is left out whatever its name.
"""

from __future__ import annotations

from msgspec import Struct

from crawl4ai_llm_docs.discover.frontier import Queued, SeenSet
from crawl4ai_llm_docs.discover.hops import Refusal
from crawl4ai_llm_docs.discover.ledger import LeftOutKind
from crawl4ai_llm_docs.discover.scope import Scope, normalise, url_key
from crawl4ai_llm_docs.models import PageReport


class Verdict(Struct, frozen=True):
    listed: bool
    reason: str = ""  # why it is not listed, or the failure of a listed page
    kind: LeftOutKind | None = None  # None: listed, or failed (and listed as failed)


def judge(
    item: Queued, report: PageReport, refusal: Refusal | None, scope: Scope, seen: SeenSet
) -> Verdict:
    if refusal is not None and report.error is not None:
        return Verdict(False, refusal.reason, refusal.kind)
    if report.error is not None:
        status = report.status or 0
        if 400 <= status < 500 and status not in (408, 429):
            return Verdict(False, f"broken link ({report.error})", "broken")
        if report.error.startswith("not HTML"):
            return Verdict(False, report.error, "not_html")
        return Verdict(item.listed, report.error)  # a page that failed: listed, with its failure
    if not item.listed:
        return Verdict(False, "followed for links only (--include/--exclude)", "glob")
    if report.links.noindex:
        return Verdict(False, "noindex", "noindex")
    if report.links.generated and not scope.names_included(item.url):
        return Verdict(False, f"{report.links.generated} (read from the page)", "skip_rule")
    final = normalise(report.final_url)
    if url_key(final) != url_key(item.url):
        verdict, why = scope.classify(final)
        if verdict == "skip":
            return Verdict(False, f"redirects to {final} ({why})", "redirect")
        if not seen.add(url_key(final)):
            return Verdict(False, f"redirects to {final}, a page already listed", "duplicate")
    canonical = report.links.canonical
    if canonical:
        try:
            target = normalise(canonical)
        except ValueError:
            return Verdict(True)
        elsewhere = url_key(target) not in (url_key(item.url), url_key(final))
        if elsewhere and scope.classify(target)[0] != "skip" and not seen.add(url_key(target)):
            return Verdict(False, f"duplicate of {target} (rel=canonical)", "duplicate")
    return Verdict(True)
