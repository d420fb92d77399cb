"""Rewrite vs edit-script cleaning on real pages (Debian's python3.11-doc), through the real CLI.

Part 1, the fake provider, with ``--latency-per-1k-tokens`` so that completion time dominates
(as at a provider writing ~50 tokens/s): for each mode, completion and prompt tokens, the LLM
phase's wall time (first request sent to last answer, from the JSON log), the cost at
gpt-4o-mini's prices, and the output compared with the crawled pages (``--no-llm``) by
markdown-it-py: code blocks and inline-code spans kept, size. Every figure comes from the
same run of each mode on the same pages.

Part 2, the real llama.cpp server (llama-cpp-python + SmolLM2-135M, ``tests/llama_server.py``),
both modes on the first pages of the same list, one request at a time: answers the judge
accepted, chunks cleaned, tokens (the client's and the server's own count from its log),
time, answers the guard stopped, chunks split, and whether any request generated more than
the ratio allows (the server's count against the ``max_tokens`` the ratio gives the chunk).

    uv run python benchmarks/bench_cleaning.py [--quick] [--skip-llama] [--llama-pages N]

Writes benchmarks/results/cleaning.json and cleaning.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from cleaning_report import LATENCY_PER_1K_TOKENS_S, LATENCY_S, PRICES, render
from common import RESULTS, machine, machine_note, progress, provider_subprocess, write_results
from markdown_it import MarkdownIt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from llama_server import LlamaServer, start_llama_server

from crawl4ai_llm_docs.llm.cleaning import (
    ANSWER_MARGIN_TOKENS,
    PROMPT_OVERHEAD_TOKENS,
    TOKENIZER_SLACK,
)
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

PYDOC = Path("/usr/share/doc/python3.11/html")
# Small and medium library pages; the first six are the real model's (about a dozen chunks).
PAGES = [
    "getpass",
    "fnmatch",
    "secrets",
    "glob",
    "atexit",
    "hmac",
    "sched",
    "getopt",
    "crypt",
    "reprlib",
    "graphlib",
    "binascii",
    "webbrowser",
    "shelve",
    "filecmp",
    "code",
    "fractions",
    "heapq",
    "bisect",
    "mimetypes",
    "gzip",
    "queue",
    "marshal",
    "pty",
]
EDIT_MAX_TOKENS = 512  # defaults.toml
LLAMA_CONFIG = """
[llm]
chunk_max_tokens = 1024
chunk_min_tokens = 256
[parallel]
max_concurrent_requests = 1
request_timeout = 1800
first_token_timeout = 900
idle_timeout = 120
"""
_MD = MarkdownIt("commonmark")
_EVAL = re.compile(r"^llama_perf_context_print:\s+eval time =.*?/\s+(\d+) runs", re.MULTILINE)
_DISCONNECTED = "Disconnected from client"


# ---------------------------------------------------------------- running the CLI


class Bench:
    """A workspace: the site, isolated XDG directories, one directory per run."""

    def __init__(self, root: Path, site_url: str) -> None:
        self.root = root
        self.site_url = site_url

    def urls(self, pages: list[str]) -> Path:
        path = self.root / f"urls-{len(pages)}.txt"
        path.write_text("".join(f"{self.site_url}/library/{p}.html\n" for p in pages))
        return path

    def run(
        self, name: str, urls: Path, *args: str, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        run_dir = self.root / name
        run_dir.mkdir()
        output, log = run_dir / "out.md", run_dir / "log.jsonl"
        command = [sys.executable, "-m", "crawl4ai_llm_docs", str(urls), "-o", str(output)]
        command += ["--crawler", "http", "--no-progress", "--no-cache", "--log-json", str(log)]
        command += args
        # No setting of the user's, no config file: only what the benchmark says.
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWL4AI_", "OPENAI_"))}
        clean |= {"OPENAI_API_KEY": "bench-key", "XDG_CACHE_HOME": str(self.root / "xdg-cache")}
        clean |= {"XDG_CONFIG_HOME": str(self.root / "xdg-config"), **(env or {})}
        clean |= {
            f"CRAWL4AI_LLM_DOCS_LLM__{k.upper()}_PRICE_PER_MTOK": str(v) for k, v in PRICES.items()
        }
        done = subprocess.run(
            command, cwd=run_dir, env=clean, capture_output=True, text=True, timeout=7200
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{name}: exit {done.returncode}\n{done.stderr[-3000:]}")
        return {
            "exit": done.returncode,
            "markdown": output.read_text(),
            "report": json.loads(output.with_suffix(".report.json").read_text()),
            "events": [json.loads(line) for line in log.read_text().splitlines()],
        }


def named(run: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [e for e in run["events"] if e["event"] == event]


def llm_phase_s(run: dict[str, Any]) -> float:
    """First request sent to last answer received, from the llm_request events."""
    spans = []
    for event in named(run, "llm_request"):
        end = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        spans.append((end - event["latency_ms"] / 1000, end))
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else math.nan


def code_blocks(markdown: str) -> collections.Counter[str]:
    return collections.Counter(
        t.content for t in _MD.parse(markdown) if t.type in ("fence", "code_block")
    )


def inline_code(markdown: str) -> collections.Counter[str]:
    return collections.Counter(
        child.content
        for token in _MD.parse(markdown)
        for child in token.children or []
        if child.type == "code_inline"
    )


def kept(reference: collections.Counter[str], output: collections.Counter[str]) -> tuple[int, int]:
    """How many of the reference's items (with repeats) the output has."""
    return sum(min(n, output[item]) for item, n in reference.items()), sum(reference.values())


def cost(prompt: int, completion: int) -> float:
    return (prompt * PRICES["input"] + completion * PRICES["output"]) / 1e6


# ---------------------------------------------------------------- part 1: the fake provider


def fake_part(bench: Bench, pages: list[str]) -> dict[str, Any]:
    urls = bench.urls(pages)
    progress(f"crawling {len(pages)} pages (--no-llm, the reference)")
    crawled = bench.run("crawled", urls, "--no-llm")
    args = f"--latency {LATENCY_S:g} --latency-per-1k-tokens {LATENCY_PER_1K_TOKENS_S:g}".split()
    args += ["--stream-chunks", "8"]
    results: dict[str, Any] = {"pages": pages, "provider": args, "modes": {}}
    with provider_subprocess(args) as provider:
        for mode in ("rewrite", "edit"):
            progress(f"fake provider: {mode}")
            args = ["--base-url", provider.base_url, "--cleaning", mode]
            run = bench.run(f"fake-{mode}", urls, *args)
            finished = run["report"]["run_finished"]
            blocks = kept(code_blocks(crawled["markdown"]), code_blocks(run["markdown"]))
            spans = kept(inline_code(crawled["markdown"]), inline_code(run["markdown"]))
            results["modes"][mode] = {
                "requests": finished["requests"],
                "prompt_tokens": finished["prompt_tokens"],
                "completion_tokens": finished["completion_tokens"],
                "llm_phase_s": llm_phase_s(run),
                "run_wall_s": finished["wall_s"],
                "cost_usd": cost(finished["prompt_tokens"], finished["completion_tokens"]),
                "code_blocks_kept": blocks,
                "inline_code_kept": spans,
                "output_chars": len(run["markdown"]),
                "fallbacks": len(named(run, "faithfulness_fallback")),
                "exit": run["exit"],
            }
    results["crawled_chars"] = len(crawled["markdown"])
    return results


# ---------------------------------------------------------------- part 2: the real model


def server_generations(text: str) -> list[int | None]:
    """Tokens the server generated for each request, in order, from its log: each generation
    ends with its timing lines ("eval time = ... / N runs"), or, when the client left
    mid-answer, with "Disconnected from client" and no timing (None: the server stopped)."""
    found: list[int | None] = []
    for line in text.splitlines():
        counted = _EVAL.match(line)
        if counted:
            found.append(int(counted.group(1)))
        elif line.startswith(_DISCONNECTED):
            found.append(None)
    return found


def rewrite_cap(chunk_tokens: int, max_tokens: int = 4096, ratio: float = 3.0) -> int:
    return min(max_tokens, math.ceil(ratio * chunk_tokens * TOKENIZER_SLACK) + ANSWER_MARGIN_TOKENS)


def llama_part(
    bench: Bench, server: LlamaServer, pages: list[str], modes: list[str]
) -> dict[str, Any]:
    urls = bench.urls(pages)
    config = bench.root / "llama.toml"
    config.write_text(LLAMA_CONFIG)
    results: dict[str, Any] = {"pages": pages, "config": LLAMA_CONFIG.strip(), "modes": {}}
    reference = bench.run(f"llama-crawled-{'-'.join(modes)}", urls, "--no-llm")["markdown"]
    for mode in modes:
        before = server.log_path.read_text(errors="replace")
        progress(f"llama.cpp server: {mode} on {len(pages)} pages (slow: one CPU thread)")
        args = ["--base-url", server.base_url, "--model", server.model, "--cleaning", mode]
        run = bench.run(f"llama-{mode}", urls, *args, "--config", str(config))
        requests = named(run, "llm_request")
        answers = [e for e in requests if e["outcome"] == "ok"]
        # The server logs a generation's counts after the answer went out: give the last
        # one a moment to reach the log.
        for _ in range(20):
            log = server.log_path.read_text(errors="replace")[len(before) :]
            if len(server_generations(log)) >= len(answers):
                break
            time.sleep(0.5)
        chunks = {(e["url"], e["chunk"]) for e in requests}
        fallbacks = named(run, "faithfulness_fallback")
        rejected = named(run, "unfaithful_retry") + fallbacks
        stopped = [
            e for e in rejected if "stopped after" in e["reason"] or "cut off" in e["reason"]
        ]
        counted = server_generations(log)
        # Each answer's tokens: the server's count, or the client's for an answer it
        # stopped (the server stopped too). A rewrite request's cap is what the ratio allows
        # the chunk: llama streams no usage, so the client's prompt figure is its estimate,
        # the chunk's tokens plus the overhead.
        generated = [
            count if count is not None else e["completion_tokens"]
            for count, e in zip(counted, answers, strict=False)
        ]
        if mode == "rewrite":
            caps = [rewrite_cap(e["prompt_tokens"] - PROMPT_OVERHEAD_TOKENS) for e in answers]
        else:
            caps = [EDIT_MAX_TOKENS] * len(answers)
        over = sum(1 for g, cap in zip(generated, caps, strict=False) if g > cap)
        finished = run["report"]["run_finished"]
        crawled_lines = collections.Counter(line for line in reference.split("\n") if line.strip())
        output_lines = collections.Counter(
            line for line in run["markdown"].split("\n") if line.strip()
        )
        results["modes"][mode] = {
            # What the accepted answers changed, against the crawled pages.
            "lines_changed": sum((crawled_lines - output_lines).values()),
            "crawled_lines": sum(crawled_lines.values()),
            "non_space_kept": len("".join(run["markdown"].split()))
            / len("".join(reference.split())),
            "code_blocks_kept": kept(code_blocks(reference), code_blocks(run["markdown"])),
            "inline_code_kept": kept(inline_code(reference), inline_code(run["markdown"])),
            "chunks": len(chunks),
            "requests": len(requests),
            "answers": len(answers),
            "answers_accepted": len(answers) - len(rejected),
            "chunks_cleaned": len(chunks) - len(fallbacks),
            "splits": sum(1 for e in requests if e["outcome"] == "split"),
            "stopped_or_cut_off": len(stopped),
            "completion_tokens_client": finished["completion_tokens"],
            "prompt_tokens_client": finished["prompt_tokens"],
            "server_generated": generated,
            "server_logged": len(counted),
            "server_disconnects": log.count(_DISCONNECTED),
            "caps": caps,
            "requests_over_cap": over,
            "run_wall_s": finished["wall_s"],
            "llm_phase_s": llm_phase_s(run),
            "reasons": [e["reason"][:160] for e in rejected],
            "exit": run["exit"],
        }
    return results


# ---------------------------------------------------------------- report


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="c4ld-cleaning-") as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 pages, 2 for the real model")
    parser.add_argument("--skip-llama", action="store_true", help="the fake provider only")
    parser.add_argument("--skip-fake", action="store_true", help="the real model only")
    parser.add_argument("--llama-pages", type=int, default=6)
    parser.add_argument(
        "--llama-modes", nargs="+", default=["rewrite", "edit"], choices=["rewrite", "edit"]
    )
    args = parser.parse_args()
    if not (PYDOC / "library" / "getpass.html").is_file():
        sys.exit(f"{PYDOC} is missing: apt-get install python3.11-doc")
    pages = list(PAGES[:8] if args.quick else PAGES)
    llama_pages = pages[: 2 if args.quick else args.llama_pages]
    before = machine()
    # A part (or a mode of the real model) not measured this time keeps its last figures:
    # the real model's runs take half an hour on two shared cores.
    saved = RESULTS / "cleaning.json"
    previous: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}
    data: dict[str, Any] = {
        "machine": before,
        "fake": previous.get("fake"),
        "llama": previous.get("llama"),
    }

    def save() -> None:
        data["machine_after"] = machine()
        data["machine_note"] = machine_note(before, data["machine_after"])
        write_results("cleaning", data, render(data))

    with workspace() as root, run_site_in_thread(SiteConfig(directory=str(PYDOC))) as site:
        bench = Bench(root, site.url("").rstrip("/"))
        if not args.skip_fake:
            data["fake"] = fake_part(bench, pages)
            save()
        if not args.skip_llama:
            with start_llama_server(root) as server:
                for mode in args.llama_modes:
                    measured = llama_part(bench, server, llama_pages, [mode])
                    if data.get("llama") and data["llama"]["pages"] == llama_pages:
                        data["llama"]["modes"][mode] = measured["modes"][mode]
                    else:
                        data["llama"] = measured
                    save()


if __name__ == "__main__":
    main()
