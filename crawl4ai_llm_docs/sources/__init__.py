"""Sources: the first stage of a run, sending the URLs to crawl.

Every source is ``run(receive, send, *, ...)``: ``send`` carries ``UrlEntry`` to the crawl
stage, ``receive`` brings every crawled page back (``Page``, failed ones too), which a
source that follows links (discovery) needs and the URL file does not.

url_file.py    the URLs of the URL file, in order
"""
