"""``python -m crawl4ai_llm_docs``."""

from crawl4ai_llm_docs.cli import main

if __name__ == "__main__":
    main()
