"""The fidelity corpus (``fidelity_corpus.toml``) and the issue's targets, for the tests and for
a per-generator table:

    uv run python tests/fidelity_support.py          # the table, extracting in process
    uv run python tests/fidelity_support.py SET ...  # some sets only, with their failures

Pages are looked up where their package installs them, then under ``$C4LD_DOCS_CACHE``
(``~/.cache/c4ld/debdocs``), where ``.ci/run`` unpacks the packages it does not install.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from markdown_oracle import evaluate
from markdown_oracle.base import Check

CORPUS = Path(__file__).resolve().parent / "fidelity_corpus.toml"
CHECKS = ("content", "code_blocks", "inline_code", "languages", "glued", "tables", "chrome")


def docs_cache() -> Path:
    return Path(os.environ.get("C4LD_DOCS_CACHE") or Path.home() / ".cache/c4ld/debdocs")


@dataclass(frozen=True)
class CorpusSet:
    id: str
    generator: str
    package: str
    root: str
    evidence: str
    oracle_main: str
    oracle_exclude: str
    oracle_layout_tables: str
    pages: tuple[str, ...]

    def directory(self) -> Path | None:
        """Where the pages are: installed, else unpacked in the cache; None when missing."""
        for base in (Path(self.root), docs_cache() / self.package / self.root.lstrip("/")):
            if all((base / page).is_file() for page in self.pages):
                return base
        return None

    def evaluate(self, page: str, markdown: str) -> dict[str, Check]:
        directory = self.directory()
        assert directory is not None
        return evaluate(
            (directory / page).read_bytes(),
            markdown,
            main=self.oracle_main or None,
            exclude=self.oracle_exclude or None,
            layout_tables=self.oracle_layout_tables or None,
        )


def corpus() -> dict[str, CorpusSet]:
    sets = tomllib.loads(CORPUS.read_text(encoding="utf-8"))["set"]
    return {s["id"]: CorpusSet(**{**s, "pages": tuple(s["pages"])}) for s in sets}


@dataclass
class Tally:
    """One set's totals over its pages, check by check: (total, ok)."""

    counts: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in CHECKS})
    failures: list[str] = field(default_factory=list)

    def add(self, page: str, result: dict[str, Check]) -> None:
        for name in CHECKS:
            check = result[name]
            self.counts[name][0] += check.total
            self.counts[name][1] += check.ok
            self.failures += [f"{page}: {name}: {failure}" for failure in check.failures]

    def share(self, name: str) -> float:
        total, ok = self.counts[name]
        return ok / total if total else 1.0

    def failed(self, name: str) -> int:
        total, ok = self.counts[name]
        return total - ok

    def missed_targets(self) -> list[str]:
        """The issue's targets this set misses (an empty list: all met)."""
        wanted = {
            "content": 1.0,
            "code_blocks": 1.0,
            "inline_code": 0.99,
            "languages": 0.95,
            "tables": 0.95,
        }
        missed = [
            f"{n} {self.share(n):.1%} < {w:.0%}" for n, w in wanted.items() if self.share(n) < w
        ]
        missed += [f"{n}: {self.failed(n)}" for n in ("glued", "chrome") if self.failed(n)]
        return missed

    def row(self, name: str, pages: int) -> str:
        def cell(check: str) -> str:
            total, ok = self.counts[check]
            return "-" if not total else f"{ok}/{total}"

        return (
            f"| {name} | {pages} | {cell('content')} | {cell('code_blocks')} "
            f"| {cell('inline_code')} | {cell('languages')} | {self.failed('glued')} "
            f"| {cell('tables')} | {self.failed('chrome')} | {'yes' if not self.missed_targets() else 'no'} |"
        )


TABLE_HEAD = (
    "| set | pages | pages with content | code blocks exact | inline code | declared languages "
    "| glued words | data tables well-formed | chrome lines | all targets |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


def main() -> None:
    import sys
    import tempfile

    from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai
    from crawl4ai_llm_docs.fetch.http import decode_html

    prepare_crawl4ai(Path(tempfile.gettempdir()) / "crawl4ai-llm-docs-tests")
    from crawl4ai_llm_docs.crawl.extract import extract

    wanted = sys.argv[1:]
    print(TABLE_HEAD)
    for name, docset in corpus().items():
        if wanted and name not in wanted:
            continue
        directory = docset.directory()
        if directory is None:
            print(f"| {name} | missing: {docset.package} | | | | | | | | |")
            continue
        tally = Tally()
        for page in docset.pages:
            html = decode_html((directory / page).read_bytes(), None)
            markdown = extract(html, f"http://127.0.0.1/{page}").markdown
            tally.add(page, docset.evaluate(page, markdown))
        print(tally.row(name, len(docset.pages)))
        if wanted:
            print("\n".join(f"<!-- {failure} -->" for failure in tally.failures))


if __name__ == "__main__":
    main()
