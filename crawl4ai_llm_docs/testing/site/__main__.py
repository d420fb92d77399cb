"""``python -m crawl4ai_llm_docs.testing.site``: see ``server.py``."""

from crawl4ai_llm_docs.testing.site.server import main

main()
