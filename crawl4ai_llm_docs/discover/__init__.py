"""Discovery: from root URLs to the site's pages, in reading order, within scope and robots.txt.

scope (normalisation, scope, exclusions) · robots (robots.txt, Crawl-delay) · sitemaps (read
in parallel, delivered in order) and sitemap_xml (one file, parsed and capped) · llms_txt ·
sources (both, within one deadline) · frontier (bounded queue, seen set) · intake (which URLs
enter the frontier) · hops (which redirects a page may follow) · judge (a crawled page's
verdict) · ledger (counts, and every page left out with its reason) · roots (bad roots) ·
engine (the source: emits URLs, takes crawled pages' links back) · mapper (the ``map``
command).

crawl4ai's ``AsyncUrlSeeder`` and ``BFSDeepCrawlStrategy`` are not used, read from its
source (0.7.x): the seeder builds robots.txt and sitemap URLs as ``https://{host}``, never
looks at ``Disallow`` and keeps only a sitemap's newest ``lastmod``, not each URL's; the
deep crawl applies its filter before fetching, so links on a filtered page are lost, and
it fetches pages with its own crawler, so each page would be fetched once to find links
and again by the crawl stage to produce its Markdown.
"""
