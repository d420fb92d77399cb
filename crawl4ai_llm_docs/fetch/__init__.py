"""HTTP from documentation sites, used by the crawl stage and by discovery alike.

http.py       one pooled httpx client; a page fetched with size, type and status checks
redirects.py  redirects followed hop by hop, each hop decided by the fetch's Route
credentials.py  per-origin headers and cookies for private docs (crawl.auth); cookies.py reads
              cookies.txt and Playwright storage states
guard.py      which addresses a crawl may reach (no private ranges unless the root is in one)
decode.py     Content-Encoding undone in bounded steps; stacked and unknown codings refused
resources.py  text resources discovery reads (robots.txt, sitemaps, llms.txt)
retry.py      backoff between attempts
"""
