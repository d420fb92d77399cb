"""Sources: the first stage of a run, sending the URLs to crawl.

Every source is ``run(send, *, ...)``: ``send`` carries ``UrlEntry`` to the crawl stage and is
closed when the source has no more. A source that follows links (discovery) hears back from
the crawl stage through its ``discovery`` link sink (``crawl/links.py``), not a channel.

url_file.py    the URLs of the URL file, in order
discovery.py   the pages discovery lists from root URLs (drives ``discover/``)
"""
