"""The crawl stage: URLs to Markdown pages over HTTP, or through Chromium for JavaScript pages.

bridge.py   one asyncio loop in a thread, driven from trio (crawl4ai is asyncio-based)
browser.py  find and launch Chromium, crawl with crawl4ai's AsyncWebCrawler over CDP
http.py     plain HTTP fetches with one pooled httpx client
extract.py  HTML -> title + Markdown of the main content (both modes)
stage.py    ``run``: the stage the pipeline calls
"""

from crawl4ai_llm_docs.crawl.stage import RetryPolicy, run

__all__ = ["RetryPolicy", "run"]
