"""HTTP from documentation sites, used by the crawl stage and by discovery alike.

http.py       one pooled httpx client; a page fetched with size, type and status checks
resources.py  text resources discovery reads (robots.txt, sitemaps, llms.txt)
retry.py      backoff between attempts
"""
