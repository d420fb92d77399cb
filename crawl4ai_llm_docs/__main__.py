"""``python -m crawl4ai_llm_docs`` and the ``crawl4ai-llm-docs`` console script.

The CLI's imports (crawl4ai, rich, msgspec ...) take a moment; a Ctrl-C during them must end
the program quietly with exit code 130, like a Ctrl-C anywhere else.
"""


def entry() -> None:
    try:
        from crawl4ai_llm_docs.cli import main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    entry()
