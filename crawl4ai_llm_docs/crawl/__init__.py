"""The crawl stage: URLs to Markdown pages over HTTP, or through Chromium for JavaScript pages.

stage.py         ``run``: the stage the pipeline calls (cache states, retries, modes)
refresh.py       conditional requests and reuse of a page's stored state
browser.py       find and launch Chromium, crawl with crawl4ai's AsyncWebCrawler over CDP
intercept.py     every browser request decided first (CDP Fetch): redirect hops, addresses
lazy_browser.py  start Chromium only when a page needs it; bridge.py: crawl4ai's asyncio loop in a thread
runtime.py       crawl4ai's home directory, set before its import
extract.py       HTML -> title + Markdown of the main content (both modes), in these steps:
languages.py     a code block's declared language (language-X, highlight-X, a bare class ...)
chrome.py        chrome found by what it is: controls, permalinks, source links; with
navigation.py    navigation links and bars, in-page contents, and edges.py: top and bottom
shapes.py        HTML shapes Markdown cannot hold made convertible (gutters, tables, terms ...)
codelinks.py     links inside code and Markdown clean-up; generators/: per-generator profiles
convert.py       the one conversion (html-to-markdown) and the escapes of prose
metadata.py      site name and description from the page's head
links.py         what a page tells discovery: links, noindex, canonical, search page or index
markdown_first.py  Markdown first: a page's content from the Markdown it offers (the stage's hook);
alternate.py     where a page names its Markdown, and that Markdown normalised;
markdown_check.py  whether it holds the title, code blocks and text of the HTML's main content
"""
