"""Discovery as the run's source: the pages it lists become the run's entries, in order.

The pipeline hands ``Discovery.run`` the URL channel instead of the URL file's feed, and the
crawl stage the same object as its link sink; this module connects what discovery decides
to the run's bookkeeping (its entry list, the page total of the progress view).
"""

from __future__ import annotations

import trio

from crawl4ai_llm_docs.config_schema import AppConfig
from crawl4ai_llm_docs.discover.engine import Discovery, Outcome
from crawl4ai_llm_docs.models import UrlEntry
from crawl4ai_llm_docs.observe.metrics import RunMetrics


async def run(send: trio.MemorySendChannel[UrlEntry], *, discovery: Discovery) -> None:
    """The source stage: discovery's URLs out, as it lists them.

    What discovery needs from a crawled page (its links, noindex, canonical) and the verdict
    the crawl stage needs before passing the page on (listed or not) go through the crawl
    stage's ``discovery`` link sink: a call that answers, which a channel back could not.
    """
    await discovery.run(send)  # closes ``send``: the crawl stage then ends


def discovery_for_run(
    roots: list[str], config: AppConfig, entries: list[UrlEntry], metrics: RunMetrics
) -> Discovery:
    """A ``Discovery`` that appends each listed page to ``entries`` as soon as it is judged."""

    async def on_outcome(outcome: Outcome) -> None:
        if outcome.listed:
            entries.append(UrlEntry(index=outcome.index, url=outcome.queued.url, line=0))
        metrics.set_totals(pages=discovery.expected_pages())

    discovery = Discovery(
        roots,
        config.discover,
        config.crawl,
        spill_dir=config.cache_directory() / "discover",
        on_outcome=on_outcome,
    )
    metrics.set_discovery_probe(discovery.snapshot)
    return discovery
