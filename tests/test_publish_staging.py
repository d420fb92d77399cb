"""All outputs of a run replace the previous ones together, and a failure says what was written.

``publish.write_outputs`` stages the document (or its parts), llms.txt, llms-full.txt and the
page files, then moves them all into place; any error is one ``OutputWriteError`` (exit 4)
whose message lists what was written and what was not.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawl4ai_llm_docs.cli.app import EXIT_CODES_HELP
from crawl4ai_llm_docs.errors import EXIT_OUTPUTS, OutputWriteError
from crawl4ai_llm_docs.lifecycle.ending import Ending
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.publish import OutputRequest, write_outputs

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def documents(version: str, count: int = 6) -> list[Document]:
    return [
        Document(
            index=i,
            url=f"https://h/guide/page-{i}.html",
            title=f"Page {i}",
            markdown=f"Text {version} of page {i}. " * 40,
        )
        for i in range(count)
    ]


def request(tmp: Path, **fields: object) -> OutputRequest:
    return OutputRequest(
        markdown=tmp / "out" / "docs.md",
        generated_at=WHEN,
        llms_dir=tmp / "llms",
        pages_dir=tmp / "pages",
        **fields,  # type: ignore[arg-type]
    )


def contents(tmp: Path) -> dict[str, bytes]:
    return {p.relative_to(tmp).as_posix(): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}


def test_an_error_before_the_move_leaves_every_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(documents("one"), request(tmp_path))
    before = contents(tmp_path)
    real_open = os.open
    calls = 0

    def failing_open(
        path: str | os.PathLike[str], flags: int, mode: int = 0o777, **kw: int | None
    ) -> int:
        nonlocal calls
        if "staging" in str(path) and flags & os.O_CREAT:
            calls += 1
            if calls == 5:  # the document and llms files are staged; a page file fails
                raise OSError(28, "No space left on device")
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(OutputWriteError) as raised:
        write_outputs(documents("two"), request(tmp_path))
    assert contents(tmp_path) == before
    message = raised.value.message
    assert "No space left on device" in message
    assert "Written: nothing; every previous file is as it was." in message
    assert f"Not written: {tmp_path / 'out/docs.md'}, {tmp_path / 'llms/llms.txt'}" in message
    assert raised.value.written == []
    assert raised.value.exit_code == EXIT_OUTPUTS == 4


def test_a_move_that_fails_half_way_lists_what_was_written_and_what_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    moves = 0

    def failing_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        nonlocal moves
        moves += 1
        if moves == 4:
            raise OSError(18, "Invalid cross-device link", str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputWriteError) as raised:
        write_outputs(documents("one"), request(tmp_path))
    written = raised.value.written
    assert written == [
        str(tmp_path / "out/docs.md"),
        str(tmp_path / "llms/llms-full.txt"),
        str(tmp_path / "llms/llms.txt"),
    ]
    assert sorted(contents(tmp_path)) == sorted(
        ["out/docs.md", "llms/llms-full.txt", "llms/llms.txt"]
    )
    message = raised.value.message
    assert "Invalid cross-device link" in message
    assert f"Written: {', '.join(written)}." in message
    assert f"Not written: 6 page files in {tmp_path / 'pages'}." in message
    # No staging directory is left behind.
    assert not [p for p in tmp_path.rglob("*") if "staging" in p.name]


def test_parts_of_an_older_split_go_only_once_the_new_set_is_in_place(tmp_path: Path) -> None:
    old = tmp_path / "out"
    old.mkdir()
    for number in (1, 2, 3):  # a split into 100+ parts names them part-001 ...
        (old / f"docs.part-{number:03d}.md").write_text("old")
    (old / "docs.part-007.md").write_text("old")
    written = write_outputs(documents("two", 12), request(tmp_path, max_file_tokens=600))
    names = sorted(p.name for p in old.iterdir())
    assert names == sorted(Path(p).name for p in written if p.startswith(str(old)))
    assert "docs.part-01.md" in names
    assert not [name for name in names if len(name) != len("docs.part-01.md")], names


def test_outputs_not_written_win_over_every_other_ending() -> None:
    failures = [("https://h/x", "HTTP 404")]
    for ending in (
        Ending().work_over(),
        Ending().stopping("bad key").work_over(),
        Ending.interrupted(2),
    ):
        assert ending.outputs_failed("disk full").exit_code(failures) == EXIT_OUTPUTS
        assert ending.exit_code(failures) != EXIT_OUTPUTS


def test_help_lists_every_exit_code() -> None:
    text = " ".join(EXIT_CODES_HELP.split())
    for code in (
        "0 all documents",
        "1 finished",
        "2 usage",
        "3 stopped",
        "4 outputs",
        "130",
        "143",
    ):
        assert code in text
