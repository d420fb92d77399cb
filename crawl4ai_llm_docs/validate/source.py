"""What ``validate`` reads: a file, every llms.txt under a directory, or a URL, with how it was
served (content type, charset) and encoded (UTF-8) as faults of its own.

Input that cannot be read at all (missing, not text, unreachable, not 2xx, too large) is an
``InputError``: one message, exit 2.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import httpx
from msgspec import Struct

from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.resources import open_resource
from crawl4ai_llm_docs.validate.faults import Fault

MAX_BYTES = 16 * 1024 * 1024  # far above any index; a bigger "llms.txt" is something else
TEXT_TYPES = ("text/plain", "text/markdown")
_SNIFF = 8192  # bytes looked at for NULs: a binary file has them early
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_USE = "Give an llms.txt file, a directory holding llms.txt files, or its http(s) URL."


class Source(Struct, frozen=True, kw_only=True):
    name: str  # as given: a path or a URL
    url: str  # where it was fetched from, after redirects; "" for a file
    text: str
    faults: list[Fault]  # of the bytes and how they were served, not of the Markdown


def is_url(target: str) -> bool:
    return bool(_URL.match(target))


def expand(targets: list[str]) -> list[str]:
    """Files and URLs to read: a directory stands for every llms.txt under it, shallowest first."""
    found: list[str] = []
    for target in targets:
        if is_url(target):
            if not target.lower().startswith(("http://", "https://")):
                raise InputError(f"{target}: only http:// and https:// URLs can be fetched. {_USE}")
            found.append(target)
            continue
        path = Path(target)
        if path.is_dir():
            files = sorted(path.rglob("llms.txt"), key=lambda p: (len(p.parts), str(p)))
            if not files:
                raise InputError(f"{target} is a directory with no llms.txt in it. {_USE}")
            found += [str(file) for file in files]
        elif not path.exists():
            raise InputError(f"{target} does not exist. {_USE}")
        else:
            found.append(target)
    return found


def read_file(target: str) -> Source:
    """A local file (blocking: call it from a worker thread)."""
    path = Path(target)
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{target} cannot be read ({exc.strerror or exc}). {_USE}") from None
    if len(body) > MAX_BYTES:
        raise InputError(f"{target} is larger than {MAX_BYTES // 2**20} MB: not an llms.txt.")
    text, faults = decode(body, target)
    return Source(name=target, url="", text=text, faults=faults)


async def fetch_source(client: httpx.AsyncClient, url: str) -> Source:
    """The llms.txt at ``url`` (redirects followed) and the faults of how it is served; the
    caller bounds the time (``trio.fail_after``)."""
    too_large = f"{url} is larger than {MAX_BYTES // 2**20} MB: not an llms.txt."
    try:
        async with open_resource(client, url) as (resource, response):
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise InputError(too_large)
            parts: list[bytes] = []
            size = 0
            async for part in response.aiter_bytes():
                parts.append(part)
                size += len(part)
                if size > MAX_BYTES:
                    raise InputError(too_large)
            charset = response.charset_encoding
    except FetchFailure as failure:
        raise InputError(f"Could not fetch {url}: {failure.reason}. {_USE}") from None
    body = b"".join(parts)
    text, faults = decode(body, url)
    faults = _served_faults(resource.content_type, charset, body) + faults
    return Source(name=url, url=resource.final_url, text=text, faults=faults)


def _served_faults(content_type: str, charset: str | None, body: bytes) -> list[Fault]:
    faults: list[Fault] = []
    serve = "serve it as text/plain (or text/markdown) with charset=utf-8"
    if not content_type:
        faults.append(Fault(code="content-type", message=f"served without a Content-Type: {serve}"))
    elif content_type not in TEXT_TYPES:
        faults.append(
            Fault(
                code="content-type",
                message=f"served as {content_type}, which readers do not take for text: {serve}",
            )
        )
    if charset is None:
        if not body.isascii():
            faults.append(
                Fault(
                    code="charset",
                    message="served without a charset, and the file is not plain ASCII: "
                    "readers may take text/plain for US-ASCII or Latin-1; add charset=utf-8",
                )
            )
    elif _codec(charset) != "utf-8":
        faults.append(Fault(code="charset", message=f"served as charset={charset}: {serve}"))
    return faults


def _codec(charset: str) -> str:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return charset.lower()


def decode(body: bytes, name: str) -> tuple[str, list[Fault]]:
    """The text of ``body`` as UTF-8; bytes that are not UTF-8 are a fault (and U+FFFD)."""
    if b"\x00" in body[:_SNIFF]:
        raise InputError(f"{name} is not a text file (it holds NUL bytes). {_USE}")
    try:
        return body.decode("utf-8"), []
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        fault = Fault(
            code="not-utf8",
            line=line,
            message=f"bytes that are not UTF-8 (from byte {error.start}): save the file as UTF-8",
        )
        return body.decode("utf-8", errors="replace"), [fault]
