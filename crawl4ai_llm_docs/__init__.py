"""crawl4ai-llm-docs: documentation URLs in, LLM-ready Markdown out."""

__version__ = "0.1.0"
