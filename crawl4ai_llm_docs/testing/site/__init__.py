"""A local documentation site (``python -m crawl4ai_llm_docs.testing.site``).

server.py  start it and its CLI; pages.py: the generated Sphinx-like pages
http.py    streamed and revised answers; discovery.py: sitemaps and extra files
"""
