"""The hostile sites of issue 25's network and discovery cases, as ``HostileServer`` routes.

Each builder returns path -> ``Answer``; ``{base}`` is the server's address and ``{other}``
the same server under the name ``localhost`` (another host, as far as a crawler knows, so a
test can prove it was never asked: ``hits`` of that path stay 0). ``EXPECTED`` of a case says
what a correct crawler makes of it.
"""

from __future__ import annotations

from collections.abc import Callable

from crawl4ai_llm_docs.testing.hostile.payloads import (
    Answer,
    Drip,
    Routes,
    bomb,
    duplicate_sitemap_gz,
    sitemap_bomb_br,
    sitemap_index,
    urlset,
    wildcard_robots,
)

HTML = ("content-type", "text/html; charset=utf-8")
WORDS = " ".join(["Documentation text that a reader came for."] * 12)


def page(title: str, *links: str, body: str = "", head: str = "") -> Answer:
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return Answer.html(
        f"<!DOCTYPE html><html><head><title>{title}</title>{head}</head><body>"
        f'<div role="main"><h1>{title}</h1><p>{WORDS}</p>{body}<ul>{anchors}</ul></div>'
        "</body></html>"
    )


def _encoded(coding: str, *, content_type: str = HTML[1]) -> Answer:
    body = bomb(coding) if coding != "compress" else b"\x1f\x9d\x90" + b"x" * 3000
    return Answer(200, body, (("content-type", content_type), ("content-encoding", coding)))


# ---------------------------------------------------------------- decompression bombs

PAGE_BOMBS = {  # path -> the Content-Encoding it is sent with
    "/docs/br.html": "br",
    "/docs/gzip-gzip.html": "gzip, gzip",
    "/docs/gzip.html": "gzip",
    "/docs/deflate.html": "deflate",
    "/docs/compress.html": "compress",
}


def page_bombs() -> Routes:
    """Pages of 3 KB (br) to 2.4 MB (gzip) that inflate to 1 GiB, and codings refused."""
    routes = {path: _encoded(coding) for path, coding in PAGE_BOMBS.items()}
    routes["/docs/ok.html"] = page("Fine page")
    routes["/docs/"] = page("Index", "ok.html", *(p.rsplit("/", 1)[1] for p in PAGE_BOMBS))
    return routes


def site_file_bombs() -> Routes:
    """robots.txt, llms.txt and a sitemap sent as 1 GiB bombs, and a .xml.gz of one URL
    two million times; the 3 pages of the site are only reachable through good lists."""
    routes = {
        "/robots.txt": _encoded("br", content_type="text/plain"),
        "/docs/llms.txt": _encoded("gzip", content_type="text/plain"),
        "/sitemap.xml": Answer.text(
            sitemap_index(
                ["{base}/sitemap-bomb.xml", "{base}/flood.xml.gz", "{base}/pages.xml"]
            ).decode(),
            "application/xml",
        ),
        "/sitemap-bomb.xml": Answer(
            200,
            sitemap_bomb_br(),
            (("content-type", "application/xml"), ("content-encoding", "br")),
        ),
        "/flood.xml.gz": Answer(
            200,
            duplicate_sitemap_gz("http://127.0.0.1/nowhere.html", 2_000_000),
            (("content-type", "application/gzip"),),
        ),
        "/pages.xml": Answer.text(
            urlset([f"{{base}}/docs/p{n}.html" for n in range(3)]).decode(), "application/xml"
        ),
        "/docs/": page("Index"),
    }
    routes |= {f"/docs/p{n}.html": page(f"Page {n}") for n in range(3)}
    return routes


# ---------------------------------------------------------------- time


def dripping_sitemaps(count: int = 3) -> Routes:
    """robots.txt lists ``count`` sitemaps that send one URL, then a byte a second forever."""
    names = [f"/sitemap-{n}.xml" for n in range(count)]
    robots = "User-agent: *\nAllow: /\n" + "".join(f"Sitemap: {{base}}{n}\n" for n in names)
    routes: Routes = {"/robots.txt": Answer.text(robots), "/docs/": page("Index", "a.html")}
    routes["/docs/a.html"] = page("A")
    for n, name in enumerate(names):
        first = (
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{{base}}/docs/only-in-sitemap-{n}.html</loc></url>"
        ).encode()
        routes[name] = Answer(
            200, Drip(first=first, piece=b" ", every=1.0), (("content-type", "application/xml"),)
        )
        routes[f"/docs/only-in-sitemap-{n}.html"] = page(f"Sitemap page {n}")
    return routes


def wildcard_robots_site(pages: int = 30, robots_bytes: int = 50_000_000) -> Routes:
    """A 50 MB robots.txt of wildcard rules, and pages that each link to every page."""
    names = [f"p{n:02}.html" for n in range(pages)]
    routes: Routes = {
        "/robots.txt": Answer(
            200, wildcard_robots(robots_bytes).encode(), (("content-type", "text/plain"),)
        ),
        "/docs/": page("Index", *names, "private/x.html"),
        "/docs/private/x.html": page("Private"),
    }
    routes |= {f"/docs/{name}": page(name, *names) for name in names}
    return routes


# ---------------------------------------------------------------- redirects and other hosts


def redirects() -> Routes:
    """Links whose redirects lead where discovery may not go, and lists naming other hosts."""
    return {
        "/robots.txt": Answer.text(
            "User-agent: *\nDisallow: /docs/private/\nSitemap: {other}/sitemap-elsewhere.xml\n"
        ),
        "/docs/": page(
            "Index",
            "a.html",
            "to-private.html",
            "to-elsewhere.html",
            "to-outside.html",
            "to-a.html",
        ),
        "/docs/a.html": page("A"),
        "/docs/to-private.html": Answer.redirect("/docs/private/secret.html"),
        "/docs/private/secret.html": page("Secret"),
        "/docs/to-elsewhere.html": Answer.redirect("{other}/docs/elsewhere.html"),
        "/docs/to-outside.html": Answer.redirect("/outside/page.html"),
        "/docs/to-a.html": Answer.redirect("/docs/a.html"),
        "/docs/llms.txt": Answer.text(
            "# Site\n\n- [A](a.html)\n- [Other]({other}/docs/from-llms.html)\n"
        ),
        "/sitemap-elsewhere.xml": Answer.text(
            urlset(["{other}/docs/x.html"]).decode(), "application/xml"
        ),
    }


# Paths of ``redirects`` a correct crawler never asks for.
NEVER_FETCHED = (
    "/docs/private/secret.html",
    "/docs/elsewhere.html",
    "/outside/page.html",
    "/sitemap-elsewhere.xml",
    "/docs/from-llms.html",
)

# ---------------------------------------------------------------- a docs site, whole

SPHINX_SEARCH = """<!DOCTYPE html><html><head><title>Search — Docs</title>
<script src="_static/searchtools.js"></script><script src="searchindex.js" defer></script>
</head><body><div class="related" role="navigation"><a href="index.html">Docs</a></div>
<div class="body" role="main"><h1 id="search-documentation">Search</h1>
<noscript><div class="admonition warning"><p>Please activate JavaScript to enable the search
functionality.</p></div></noscript><p>Searching for multiple words only shows matches that
contain all words.</p><form action="" method="get"><input type="text" name="q" value="" />
<input type="submit" value="search" /></form><div id="search-results"></div></div>
<div class="sphinxsidebar" role="navigation"><a href="genindex.html">Index</a></div>
</body></html>"""

SPHINX_GENINDEX = (
    '<html><head><title>Index</title></head><body><div role="main"><h1>Index</h1>'
    '<table class="indextable genindextable"><tr><td><a href="x.html">x</a></td></tr></table>'
    "</div></body></html>"
)


def docs_tree() -> Routes:
    """A Django-like docs version: real pages named search.html and default.html, Sphinx's
    search page and indexes, a directory and its index.html, noindex, canonical, a 404, a
    page robots.txt disallows and one only the sitemap lists."""
    v = "/en/5.0/"
    in_scope = [
        "topics/auth/",
        "topics/auth/index.html",
        "topics/auth/default.html",
        "topics/db/search.html",
        "ref/contrib/postgres/search.html",
        "search.html",
        "genindex.html",
        "dir/",
        "dir/index.html",
        "missing.html",
        "noindex.html",
        "copy.html",
        "internal/x.html",
        "logo.png",
        "_sources/index.rst.txt",
    ]
    outside = ["/en/4.2/", "{other}/en/5.0/", "https://github.com/django/django"]
    routes: Routes = {
        "/robots.txt": Answer.text(f"User-agent: *\nDisallow: {v}internal/\n"),
        "/sitemap.xml": Answer.text(
            urlset(
                [f"{{base}}{v}{p}" for p in ("topics/auth/default.html", "only-in-sitemap.html")]
                + ["{base}/en/4.2/x.html"]
            ).decode(),
            "application/xml",
        ),
        v: page("Django documentation", *in_scope, *outside),
        f"{v}topics/auth/": page("Authentication", "default.html", "../db/search.html"),
        f"{v}topics/auth/default.html": page("Using the authentication system", "index.html"),
        f"{v}topics/db/search.html": page("Search (database queries)", "../auth/"),
        f"{v}ref/contrib/postgres/search.html": page("Full text search"),
        f"{v}search.html": Answer.html(SPHINX_SEARCH),
        f"{v}genindex.html": Answer.html(SPHINX_GENINDEX),
        f"{v}dir/": page("A directory", "index.html"),
        f"{v}noindex.html": page("Hidden", head='<meta name="robots" content="noindex">'),
        f"{v}copy.html": page(
            "Copy", head=f'<link rel="canonical" href="{{base}}{v}topics/auth/">'
        ),
        f"{v}internal/x.html": page("Internal"),
        f"{v}only-in-sitemap.html": page("Only in the sitemap"),
        "/en/4.2/": page("Old version"),
    }
    routes[f"{v}topics/auth/index.html"] = routes[f"{v}topics/auth/"]
    routes[f"{v}dir/index.html"] = routes[f"{v}dir/"]
    return routes


# What ``map`` of docs_tree from /en/5.0/ lists, and why it leaves the rest out.
DOCS_TREE_LISTED = (
    "",
    "topics/auth/",
    "topics/auth/default.html",
    "topics/db/search.html",
    "ref/contrib/postgres/search.html",
    "dir/",
    "only-in-sitemap.html",
)
DOCS_TREE_LEFT_OUT = {
    "search.html": "a search page",
    "genindex.html": "a generated index or source view",
    "missing.html": "broken link",
    "noindex.html": "noindex",
    "copy.html": "duplicate of",
    "internal/x.html": "disallowed by robots.txt",
    "logo.png": "not an HTML page",
    "_sources/index.rst.txt": "not an HTML page",
}

CASES: dict[str, Callable[[], Routes]] = {
    "page-bombs": page_bombs,
    "site-file-bombs": site_file_bombs,
    "dripping-sitemaps": dripping_sitemaps,
    "wildcard-robots": wildcard_robots_site,
    "redirects": redirects,
    "docs-tree": docs_tree,
}
