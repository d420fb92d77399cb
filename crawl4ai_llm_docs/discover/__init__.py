"""Discovery: from root URLs to the site's pages, in reading order, within scope and robots.txt.

scope (normalisation, scope, exclusions) · robots (robots.txt, Crawl-delay) · sitemaps ·
llms_txt · links (links of a crawled page) · frontier (bounded queue, seen set) · roots (bad
roots, the site's own lists) · engine (the source: emits URLs, takes crawled pages' links
back) · run_source (discovery as the run's source) · mapper (the ``map`` command).

crawl4ai's ``AsyncUrlSeeder`` and ``BFSDeepCrawlStrategy`` are not used, read from its
source (0.7.x): the seeder builds robots.txt and sitemap URLs as ``https://{host}``, never
looks at ``Disallow`` and keeps only a sitemap's newest ``lastmod``, not each URL's; the
deep crawl applies its filter before fetching, so links on a filtered page are lost, and
it fetches pages with its own crawler, so each page would be fetched once to find links
and again by the crawl stage to produce its Markdown.
"""
