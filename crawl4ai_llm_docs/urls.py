"""Reading the URL file: one URL per line, comments and blanks skipped, problems reported by line.

Only http(s) URLs with a host are crawled. Fragments are dropped and scheme/host lower-cased
before de-duplication, so ``https://Docs.x/a#intro`` and ``https://docs.x/a`` are one page.
The run fails (exit 2) only when no valid URL remains; other problems are warnings.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from msgspec import Struct

from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.models import UrlEntry

# A URL list larger than this is almost certainly the wrong file.
MAX_URL_FILE_BYTES = 64 * 1024 * 1024
MAX_URL_LENGTH = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlProblem(Struct, frozen=True):
    line: int
    text: str
    reason: str


class ParsedUrls(Struct, frozen=True):
    entries: list[UrlEntry]
    problems: list[UrlProblem]
    duplicates: int


def normalise_url(raw: str) -> str:
    """Return the canonical form of an http(s) URL, or raise ValueError saying what is wrong."""
    if len(raw) > MAX_URL_LENGTH:
        raise ValueError(f"longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in raw):
        raise ValueError("contains white space")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError("relative URL: give the full address starting with https://")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r}: only http and https are crawled")
    if parts.username is not None or parts.password is not None:
        raise ValueError("contains credentials (user:password@): remove them, they would leak")
    host = parts.hostname
    if not host:
        raise ValueError("has no host name")
    try:
        # IDN hosts are crawled by their ASCII (punycode) name.
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ValueError(f"host name {host!r} is not a valid internationalised name") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def _shown(text: str) -> str:
    """The line as quoted in messages: never repeat a password from the file."""
    return _USERINFO.sub(r"\1***@", text)[:200]


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data[:8192]:
        raise InputError(
            f"URL file {path} looks binary (it contains NUL bytes). "
            "Give a text file with one http(s) URL per line."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older tools wrote Latin-1; every byte sequence decodes, so this cannot fail.
        return data.decode("latin-1")


def parse_url_text(text: str) -> ParsedUrls:
    entries: list[UrlEntry] = []
    problems: list[UrlProblem] = []
    seen: set[str] = set()
    duplicates = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            url = normalise_url(stripped)
        except ValueError as exc:
            problems.append(UrlProblem(number, _shown(stripped), str(exc)))
            continue
        if url in seen:
            duplicates += 1
            continue
        seen.add(url)
        entries.append(UrlEntry(index=len(entries), url=url, line=number))
    return ParsedUrls(entries=entries, problems=problems, duplicates=duplicates)


def read_url_file(path: Path) -> ParsedUrls:
    """Parse the URL file; raise InputError when it cannot be used at all."""
    if not path.exists():
        raise InputError(
            f"URL file {path} does not exist. Pass a text file with one http(s) URL per line."
        )
    if path.is_dir():
        raise InputError(f"URL file {path} is a directory. Pass the text file that lists the URLs.")
    try:
        size = path.stat().st_size
        if size > MAX_URL_FILE_BYTES:
            raise InputError(
                f"URL file {path} is {size // (1024 * 1024)} MiB, more than the "
                f"{MAX_URL_FILE_BYTES // (1024 * 1024)} MiB a URL list can be. Check that it is "
                "the right file, or split it."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"URL file {path} cannot be read: {exc.strerror}. Check its permissions."
        ) from None
    parsed = parse_url_text(_decode(data, path))
    if not parsed.entries:
        detail = ""
        if parsed.problems:
            first = parsed.problems[0]
            detail = f" Line {first.line} ({first.text!r}): {first.reason}."
        raise InputError(
            f"URL file {path} contains no valid URL.{detail} "
            "Put one http(s) URL per line; blank lines and lines starting with # are skipped."
        )
    return parsed
