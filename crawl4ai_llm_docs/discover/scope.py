"""Which URLs belong to a discovery: normalisation, the dedupe key, scope and exclusions.

Two forms of a URL are used. The *fetch form* (``normalise``) is what is requested and
written: scheme and host lower-cased, default port, fragment and tracking parameters gone.
The *key* (``url_key``) decides whether two URLs are the same page: it also folds
``index.html`` (and ``index.htm``) into its directory and ignores a trailing slash, so
``/a/``, ``/a`` and ``/a/index.html`` are one page (fetched in whichever form was found
first): the directory index every static server serves. Other names (``default.html``,
``index.php``) are pages of their own; a server that treats one as its directory says so by
redirecting, and a redirect to a page already listed makes it a duplicate.

The scope of a root is its host and the directory of its (final) URL: the root
``https://docs.x/en/stable/`` or ``.../en/stable/index.html`` covers ``/en/stable/...`` and
nothing else, so other versions and languages stay out; ``whole_site`` widens it to the host.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from msgspec import Struct

from crawl4ai_llm_docs.urls import normalise_url

# Query parameters that only say where a visitor came from.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga", "_gl", "yclid", "igshid"}
)
TRACKING_PREFIXES = ("utm_",)
Verdict = Literal["list", "follow", "skip"]
INDEX_NAMES = ("index.html", "index.htm")

# Links to these are never followed: they are not documentation pages.
NON_HTML_EXTENSIONS = frozenset(
    [
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "avif",
        "pdf",
        "zip",
        "gz",
        "tgz",
        "bz2",
        "xz",
        "7z",
        "rar",
        "tar",
        "whl",
        "egg",
        "exe",
        "dmg",
        "msi",
        "deb",
        "rpm",
        "apk",
        "jar",
        "war",
        "mp3",
        "mp4",
        "m4a",
        "ogg",
        "wav",
        "webm",
        "mov",
        "avi",
        "mkv",
        "css",
        "js",
        "mjs",
        "map",
        "json",
        "xml",
        "txt",
        "csv",
        "tsv",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "epub",
        "mobi",
        "ps",
        "dvi",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "inv",
        "pickle",
        "db",
        "sqlite",
        "rs",
        "py",
        "c",
        "h",
        "cpp",
        "java",
        "ipynb",
        "rss",
        "atom",
    ]
)

# Generated indexes and source views, by their names (overridable with an --include glob).
# A search page is recognised by what it is, not its name (``crawl.links``): ``search.html``
# is also the name of real pages (Django's ``ref/contrib/postgres/search.html``).
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "*/genindex*",  # Sphinx general index
    "*/py-modindex.html",  # Sphinx module index
    "*/_sources/*",  # Sphinx page sources
    "*/_modules/*",  # Sphinx highlighted module source
    "*/src/*.rs.html",  # rustdoc source views
    "*/class-use/*",  # Javadoc "uses of class" pages
    "*/search-index*",  # rustdoc / mkdocs search data
)


def normalise(raw: str) -> str:
    """The fetch form of an http(s) URL; raise ValueError when it is not one."""
    url = normalise_url(raw)
    parts = urlsplit(url)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _tracking(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    path = posixpath.normpath(parts.path) if "/." in parts.path else parts.path
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    path = path.replace("//", "/") if "//" in path else path
    return urlunsplit((parts.scheme, parts.netloc, path or "/", query, ""))


def _tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def url_key(url: str) -> str:
    """The identity of a page: ``/a/``, ``/a`` and ``/a/index.html`` are one page."""
    parts = urlsplit(url)
    path = parts.path
    for name in INDEX_NAMES:
        if path.endswith("/" + name):
            path = path[: -len(name)]
            break
    path = path.rstrip("/") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def directory_of(url: str) -> str:
    """The path prefix a root URL covers: its directory (``/en/stable/`` for both forms)."""
    path = urlsplit(url).path or "/"
    return path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"


def looks_like_html(url: str) -> bool:
    """False for links to images, archives, PDFs and other files that are not pages."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if "." not in name:
        return True
    extension = name.rsplit(".", 1)[-1].lower()
    return extension not in NON_HTML_EXTENSIONS


class Area(Struct, frozen=True):
    """One root's share of the scope: a host (scheme://netloc) and a path prefix."""

    origin: str
    prefix: str


def _pattern(glob: str) -> str:
    # "api/*" matches at any depth; "/api/*" only from the site's root.
    return glob if glob.startswith(("/", "*")) else "*/" + glob


class Scope:
    """Decides, for a fetch-form URL, whether discovery may list it, and if not why."""

    def __init__(
        self,
        areas: Iterable[Area],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        default_excludes: Sequence[str] = DEFAULT_EXCLUDES,
    ) -> None:
        self.areas = tuple(dict.fromkeys(areas))
        self.include = tuple(_pattern(glob) for glob in include)
        self.exclude = tuple(_pattern(glob) for glob in exclude)
        self.default_excludes = tuple(default_excludes)

    @classmethod
    def for_roots(
        cls,
        roots: Iterable[str],
        *,
        whole_site: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> Scope:
        areas = []
        for root in roots:
            parts = urlsplit(root)
            origin = f"{parts.scheme}://{parts.netloc}"
            areas.append(Area(origin, "/" if whole_site else directory_of(root)))
        return cls(areas, include=include, exclude=exclude)

    def describe(self) -> str:
        return ", ".join(f"{area.origin}{area.prefix}" for area in self.areas)

    def in_area(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        path = parts.path or "/"
        for area in self.areas:
            if origin == area.origin and (
                path.startswith(area.prefix) or path + "/" == area.prefix
            ):
                return True
        return False

    def names_included(self, url: str) -> bool:
        """True when an --include glob matching ``url`` names its file, e.g. "*/search.html"."""
        path = urlsplit(url).path or "/"
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return bool(name) and any(
            name in glob and fnmatch.fnmatchcase(path, glob) for glob in self.include
        )

    def classify(self, url: str) -> tuple[Verdict, str]:
        """Whether ``url`` is listed, only followed for its links, or skipped, and why.

        A page an --include/--exclude glob leaves out is still fetched for its links (only
        its document is left out), so the pages behind it are found; pages outside the scope,
        files that are not HTML and the default exclusions are never fetched.
        """
        if not self.in_area(url):
            return "skip", "outside the scope"
        if not looks_like_html(url):
            return "skip", "not an HTML page"
        path = urlsplit(url).path or "/"
        if any(fnmatch.fnmatchcase(path, glob) for glob in self.exclude):
            return "follow", "matches --exclude"
        included = [glob for glob in self.include if fnmatch.fnmatchcase(path, glob)]
        for default in self.default_excludes:
            if fnmatch.fnmatchcase(path, default):
                # Overridden only by an include that names it ("*/_modules/*"), not by "/docs/*".
                name = default.strip("*/").split("*")[0].split("/")[0]
                if not any(name in glob for glob in included):
                    return "skip", "a generated index or source view"
        if self.include and not included:
            return "follow", "matches no --include"
        return "list", ""
