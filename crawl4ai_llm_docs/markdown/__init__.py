"""Text helpers shared by the chunk, LLM and output stages.

tokens.py       token counts (cl100k, offline)
blocks.py       Markdown block structure: headings, fences, the blocks a text tiles into
chunking.py     pages to chunks, and a chunk to halves
reassemble.py   chunk results back into a page
titles.py       a page title and the site's name around it (one rule for crawl and outputs)
"""
