"""Discovery: from root URLs to the site's pages, in reading order, within scope and robots.txt.

scope (normalisation, scope, exclusions) · robots (robots.txt, Crawl-delay) · sitemaps ·
llms_txt · links (links of a crawled page) · frontier (bounded queue, seen set) · roots (bad
roots, the site's own lists) · engine (the source: emits URLs, takes crawled pages' links
back) · mapper (the ``map`` command).
"""
