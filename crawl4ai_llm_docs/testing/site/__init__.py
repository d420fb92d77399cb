"""A local documentation site (``python -m crawl4ai_llm_docs.testing.site``).

server.py    start it and its CLI; handle.py: what it is asked to serve and what it saw
pages.py     the generated Sphinx-like pages; markdown.py: their own Markdown, and how it is offered
http.py      streamed and revised answers; discovery.py: sitemaps and extra files
private.py   every path behind a header or a cookie; the headers each request carried
"""
