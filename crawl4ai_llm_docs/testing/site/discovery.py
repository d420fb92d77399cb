"""What the local docs site serves for discovery tests: extra files and a generated sitemap.

``SiteConfig.files`` maps paths to text (robots.txt, llms.txt, a hand-written sitemap, a
noindex page ...), served with the type its extension implies. ``SiteConfig.sitemap`` makes
the site publish every page in ``/sitemap.xml``: a plain sitemap, or, past ``sitemap_size``
URLs, a sitemap index of gzip-compressed sitemaps ``/sitemaps/sitemap-N.xml.gz``.
"""

from __future__ import annotations

import gzip
import mimetypes
from collections.abc import Sequence

SITEMAP_PATH = "/sitemap.xml"
LASTMOD = "2024-05-01"
_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def file_response(files: dict[str, str], path: str, base_url: str) -> tuple[bytes, str] | None:
    """``files[path]`` with ``{base}`` replaced by the site's address (for absolute URLs)."""
    if path not in files:
        return None
    content_type = mimetypes.guess_type(path)[0] or "text/plain"
    if content_type.startswith("text/") or content_type.endswith("xml"):
        content_type += "; charset=utf-8"
    return files[path].replace("{base}", base_url).encode(), content_type


def _urlset(base_url: str, paths: Sequence[str]) -> bytes:
    entries = "".join(
        f"<url><loc>{base_url}{path}</loc><lastmod>{LASTMOD}</lastmod></url>" for path in paths
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {_NS}>{entries}</urlset>\n'.encode()


def sitemap_response(
    base_url: str, page_paths: Sequence[str], path: str, *, size: int
) -> tuple[bytes, str] | None:
    """The generated sitemap (or index, or one of its parts) for ``path``; None if not one."""
    parts = max((len(page_paths) + size - 1) // size, 1)
    if path == SITEMAP_PATH:
        if parts == 1:
            return _urlset(base_url, page_paths), "application/xml"
        entries = "".join(
            f"<sitemap><loc>{base_url}/sitemaps/sitemap-{n}.xml.gz</loc>"
            f"<lastmod>{LASTMOD}</lastmod></sitemap>"
            for n in range(parts)
        )
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex {_NS}>{entries}</sitemapindex>\n'
        return body.encode(), "application/xml"
    prefix, suffix = "/sitemaps/sitemap-", ".xml.gz"
    number = path.removeprefix(prefix).removesuffix(suffix)
    if path.startswith(prefix) and path.endswith(suffix) and number.isdigit():
        n = int(number)
        if n < parts:
            chunk = page_paths[n * size : (n + 1) * size]
            return gzip.compress(_urlset(base_url, chunk), mtime=0), "application/gzip"
    return None
