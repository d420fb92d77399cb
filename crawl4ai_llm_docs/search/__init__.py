"""The docs index every run keeps (SQLite FTS5), searched by ``search`` and served to agents
over MCP by ``serve``.

names.py          docs set slugs, page paths, section ids and docs:// URIs
sections.py       a page's Markdown cut at its headings, each part with its heading path
database.py       the index file: schema, version, opening it to write or to read
update.py         a run's documents into the index (only what changed) and --chunks-jsonl
query.py          what is typed, as a safe FTS5 query (thesaurus.py: words docs spell otherwise)
ranking.py        BM25 over pages and sections, combined per page
excerpts.py       text cut to a token budget at line boundaries, code blocks kept whole
reader.py         search, pages, docs sets and listings for ``search`` and ``serve``
mcp_server.py     the MCP server: tool calls and resources (imported by ``serve`` only: the
                  SDK is slow to import); mcp_tools.py: the tools' arguments, results, texts
mcp_transports.py stdio and streamable HTTP under trio (endpoints.py: HOST:PORT, loopback)
"""
