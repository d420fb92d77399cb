"""The per-URL refresh state and conditional fetches, without a network."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from crawl4ai_llm_docs.cache.page_state import PageStateStore, content_hash
from crawl4ai_llm_docs.fetch.http import Validators, fetch
from crawl4ai_llm_docs.models import Page


def _page(markdown: str = "# Title\n\nText.\n", url: str = "https://docs.example.com/a") -> Page:
    return Page(
        index=0,
        url=url,
        final_url=url,
        title="Title",
        markdown=markdown,
        status=200,
        error=None,
        elapsed=0.1,
        bytes=100,
    )


async def test_new_then_unchanged_then_changed(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    assert await store.get("https://docs.example.com/a") is None
    first = await store.record(_page(), None, etag='"v1"', last_modified=None)
    assert first.freshness == "new"
    assert first.fetched_at == first.changed_at != ""

    stored = await store.get("https://docs.example.com/a")
    assert stored is not None
    assert stored.etag == '"v1"'
    assert stored.content_hash == content_hash(_page().markdown)
    same = await store.record(_page(), stored, etag='"v1"', last_modified=None)
    assert same.freshness == "unchanged"
    assert same.changed_at == first.changed_at  # unchanged text keeps its change date

    edited = await store.record(
        _page("# Title\n\nNew text.\n"), stored, etag='"v2"', last_modified=None
    )
    assert edited.freshness == "changed"
    again = await store.get("https://docs.example.com/a")
    assert again is not None
    assert again.etag == '"v2"'
    assert again.markdown.endswith("New text.\n")


async def test_reuse_keeps_the_stored_markdown(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    await store.record(_page(), None, etag='"v1"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")
    stored = await store.get("https://docs.example.com/a")
    assert stored is not None
    reused = await store.reuse(_page(markdown=""), stored)
    assert reused.markdown == stored.markdown
    assert reused.freshness == "unchanged"
    after = await store.get("https://docs.example.com/a")
    assert after is not None
    assert after.last_modified == stored.last_modified


async def test_a_corrupt_or_foreign_entry_is_a_new_page(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    await store.record(_page(), None, etag=None, last_modified=None)
    (entry,) = (tmp_path / "pages").rglob("*.json")
    entry.write_bytes(b"{not json")
    assert await store.get("https://docs.example.com/a") is None
    # An entry copied under another URL's name is not trusted either.
    await store.record(_page(url="https://docs.example.com/b"), None, etag=None, last_modified=None)
    (other,) = [p for p in (tmp_path / "pages").rglob("*.json") if p != entry]
    os.replace(other, entry)
    assert await store.get("https://docs.example.com/a") is None


async def test_disabled_store_keeps_nothing(tmp_path: Path) -> None:
    store = PageStateStore.disabled()
    page = await store.record(_page(), None, etag='"v1"', last_modified=None)
    assert page.freshness is None
    assert await store.get(page.url) is None
    assert await store.removed_since_last_run(tmp_path / "out.md", []) == []
    await store.record_output(tmp_path / "out.md", [page.url])
    assert not list(os.scandir(tmp_path))


async def test_removed_pages_are_those_of_the_last_run_of_the_same_output(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path / "cache")
    out, other = tmp_path / "docs.md", tmp_path / "other.md"
    assert await store.removed_since_last_run(out, ["a", "b"]) == []
    await store.record_output(out, ["a", "b", "c"])
    await store.record_output(other, ["x"])
    assert await store.removed_since_last_run(out, ["b", "d"]) == ["a", "c"]
    assert await store.removed_since_last_run(other, ["x"]) == []


def test_full_refresh_is_not_conditional(tmp_path: Path) -> None:
    assert PageStateStore(tmp_path).conditional
    assert not PageStateStore(tmp_path, conditional=False).conditional
    assert not PageStateStore(None).conditional


@pytest.mark.parametrize(
    ("validators", "expected"),
    [
        (Validators(etag='"abc"'), {"if-none-match": '"abc"'}),
        (
            Validators(last_modified="Tue, 14 Nov 2023 22:13:20 GMT"),
            {"if-modified-since": "Tue, 14 Nov 2023 22:13:20 GMT"},
        ),
        (Validators(), {}),
    ],
)
def test_validators_become_conditional_headers(
    validators: Validators, expected: dict[str, str]
) -> None:
    assert validators.headers() == expected


async def test_fetch_returns_304_without_a_body_and_keeps_the_validators() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(
            200,
            html="<html><body><h1>Hi</h1></body></html>",
            headers={"etag": '"v1"', "last-modified": "Tue, 14 Nov 2023 22:13:20 GMT"},
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        full = await fetch(client, "https://docs.example.com/a", max_bytes=10_000)
        assert not full.not_modified
        assert full.etag == '"v1"'
        assert full.last_modified
        assert "Hi" in full.html
        conditional = await fetch(
            client,
            "https://docs.example.com/a",
            max_bytes=10_000,
            validators=Validators(etag=full.etag, last_modified=full.last_modified),
        )
    assert conditional.not_modified
    assert conditional.html == ""
    assert conditional.bytes == 0
    assert conditional.etag == '"v1"'  # a 304 without headers keeps what was sent
    assert "if-none-match" not in seen[0].headers
    assert seen[1].headers["if-modified-since"] == "Tue, 14 Nov 2023 22:13:20 GMT"


async def test_a_304_to_an_unconditional_request_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(304)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(Exception, match="304"):
            await fetch(client, "https://docs.example.com/a", max_bytes=10_000)
