"""Prepared HTML -> Markdown: the one conversion both crawl modes use.

The converter is html-to-markdown (Rust, MIT), chosen on measurements: on 120 pages of the
Python library docs it converts a page in ~4 ms where crawl4ai's scraping and html2text fork
took ~22 ms, and on a corpus of twenty documentation generators it writes Markdown that a
CommonMark parser reads back as intended: a fence longer than any backtick run in the code,
``|`` escaped in table cells, the spaces around inline code and links kept, ``<kbd>`` and
``<samp>`` as code (``benchmarks/bench_crawl.py --extract``, ``tests/test_fidelity_corpus.py``).

Options, and why:

- ``escape_misc``: backticks, brackets, ``<`` and ``#`` in prose stay text (without it, a
  man page's ``quotes'' become code spans and ``Array<Base>`` reads as HTML);
  ``escape_asterisks`` (``3*4*5`` is not emphasis); ``escape_underscores`` off (``snake_case``
  stays readable: an underscore inside a word is not emphasis in CommonMark);
- no preprocessing and no metadata: the main content was chosen and cleaned already
  (``extract``), the head was read by ``metadata``;
- ``compact_tables``: no padding of cells to the column width (fewer tokens);
- fenced code with backticks, ATX headings, ``-`` bullets, a backslash for a hard break.
"""

from __future__ import annotations

import dataclasses

from html_to_markdown import ConversionOptions, PreprocessingOptions, convert

from crawl4ai_llm_docs.crawl.codelinks import scrub_markdown

OPTIONS = ConversionOptions(
    extract_metadata=False,
    escape_misc=True,
    escape_asterisks=True,
    escape_underscores=False,
    preprocessing=PreprocessingOptions(enabled=False),
    code_block_style="backticks",
    heading_style="atx",
    bullets="-",
    newline_style="backslash",
    compact_tables=True,
)


def to_markdown(html: str, base_url: str) -> str:
    """Markdown of the HTML fragment ``html``; relative links resolved against ``base_url``."""
    result = convert(html, dataclasses.replace(OPTIONS, base_url=base_url))
    markdown = scrub_markdown(result.content or "")
    markdown = markdown.strip()
    return markdown + "\n" if markdown else ""
