"""``python -m crawl4ai_llm_docs.testing.provider``: see ``server.py``."""

from crawl4ai_llm_docs.testing.provider.server import main

main()
