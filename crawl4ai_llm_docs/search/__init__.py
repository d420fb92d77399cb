"""The docs index every run keeps (SQLite FTS5), searched by ``search`` and served to agents
over MCP by ``serve``.

names.py       docs set slugs, page paths, section ids and docs:// URIs
sections.py    a page's Markdown cut at its headings, each part with its heading path
database.py    the index file: schema, version, opening it to write or to read
update.py      a run's documents into the index (only what changed) and --chunks-jsonl
"""
