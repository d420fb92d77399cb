"""A hostile documentation site: each case a careless or malicious site could serve (issue 25).

server.py    a server on 127.0.0.1 that sends anything: any Content-Encoding over any bytes,
             bodies that never end, redirects anywhere (``python -m ...hostile.server CASE``)
payloads.py  decompression bombs, huge robots.txt files, sitemap floods
sites.py     the network and discovery cases as routes, with what a correct crawler makes of them
"""
