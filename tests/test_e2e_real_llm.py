"""The CLI against a real LLM: SmolLM2-135M behind llama-cpp-python's OpenAI-compatible server
(``tests/llama_server.py``), on real Sphinx pages (python-click-doc) served on loopback.

A 135M model rewrites documentation badly: it drops code, invents functions and loops. The
test does not care what it answered; it asserts what must hold whatever it answered:

- no inline-code span reaches the output that is grounded in neither the crawled page nor
  the prompt (literally, or made only of words they use: the check's own definition, here
  re-implemented independently);
- every billed token is counted, accepted or not: the ``llm_request`` events, the
  ``run_finished`` event, the report and the summary agree, and are not zero;
- a re-run sends no request: every chunk was judged (accepted, rejected, or too large for
  the model even when split) and every verdict is cached with its answer.

Kept small (two short pages, chunks of at most 256 tokens, one request at a time); it prints
what the model's answers were rejected for and how long it took (``pytest -s``).
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

import pytest
from e2e_support import HANG_GUARD_S, cli_env, run_cli, write_urls
from llama_server import LlamaServer

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.observe.events import decode_event
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

pytestmark = pytest.mark.slow

CLICK = Path("/usr/share/doc/python-click-doc/html")
PAGES = ("prompts.html", "wincmd.html")
CONFIG = """
[llm]
cleaning = "rewrite"
temperature = 0.0
max_tokens = 640
chunk_max_tokens = 256
chunk_min_tokens = 128
[parallel]
max_concurrent_requests = 1
request_timeout = 900
"""
# A CPU-only 135M model on a shared machine: minutes, not the 90 s of the fake-provider runs.
RUN_TIMEOUT_S = max(HANG_GUARD_S, 1200.0)

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_TOKEN = re.compile(r"\w+")


def inline_spans(markdown: str) -> set[str]:
    prose = _FENCE.sub("\n", markdown)
    return {" ".join(m.group(2).split()) for m in _SPAN.finditer(prose) if m.group(2).strip()}


def ungrounded(output: str, sources: str) -> list[str]:
    """The output's inline-code spans that are neither in ``sources`` nor made of its words."""
    flat = " ".join(sources.split())
    words = {token.casefold() for token in _TOKEN.findall(sources)}
    return sorted(
        span
        for span in inline_spans(output)
        if span not in flat
        and span.replace("\\", "") not in flat.replace("\\", "")
        and not all(token.casefold() in words for token in _TOKEN.findall(span))
    )


REASON_KINDS = (
    ("inline code", "inline code"),
    ("appear nowhere", "invented"),
    ("cut off", "cut off"),
    ("code block", "code blocks"),
    ("fence", "code blocks"),
    ("headings, list items", "structure"),
    ("chunk's text", "text"),
    ("repeated", "repetition"),
    ("length", "length"),
)


def reason_kind(reason: str) -> str:
    return next((kind for key, kind in REASON_KINDS if key in reason), reason)


def events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        decode_event(line)  # the documented contract, strictly
    return [json.loads(line) for line in lines]


def named(log: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in log if event["event"] == name]


@pytest.mark.timeout(1800)  # the suite's 300 s is for fake-provider tests
def test_real_llm_output_invents_no_code_and_a_rerun_sends_nothing(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    if not (CLICK / "index.html").is_file():
        pytest.skip(f"{CLICK} is missing: apt-get install python-click-doc")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = cli_env(tmp_path, api_key="sk-local-llama")
    with run_site_in_thread(SiteConfig(directory=str(CLICK))) as site:
        urls_file = write_urls(tmp_path / "urls.txt", [site.url(page) for page in PAGES])
        base = [str(urls_file), "--crawler", "http", "--no-progress", "--config", str(config)]
        crawled = run_cli(
            [*base, "-o", str(tmp_path / "crawled.md"), "--no-llm"], cwd=tmp_path, env=env
        )
        assert crawled.code == 0, crawled
        llm = ["--base-url", llama_server.base_url, "--model", llama_server.model]
        output = tmp_path / "out" / "docs.md"
        runs = []
        for number in (1, 2):
            before = llama_server.requests_served()
            log = tmp_path / f"run{number}.jsonl"
            result = run_cli(
                [*base, *llm, "-o", str(output), "--log-json", str(log)],
                cwd=tmp_path,
                env=env,
                timeout=RUN_TIMEOUT_S,
            )
            assert result.code in (0, 1), result  # 1: a chunk too large even when split
            report = json.loads(output.with_suffix(".report.json").read_text(encoding="utf-8"))
            runs.append((result, events(log), llama_server.requests_served() - before, report))

    (first, log1, served1, report1), (second, log2, served2, report2) = runs

    # No invented code reaches the output, whatever the model answered.
    llm_config = LLMConfig(cleaning="rewrite")
    prompt = "\n".join([llm_config.system_prompt, llm_config.user_prompt, *PAGES])
    sources = (tmp_path / "crawled.md").read_text(encoding="utf-8") + "\n" + prompt
    invented = ungrounded(output.read_text(encoding="utf-8"), sources)
    assert invented == [], f"invented code in the output: {invented}"

    # Every billed token is counted, accepted or not.
    requests = named(log1, "llm_request")
    assert len(requests) == served1 > 0
    prompt_tokens = sum(event["prompt_tokens"] for event in requests)
    completion_tokens = sum(event["completion_tokens"] for event in requests)
    assert prompt_tokens > 0
    assert completion_tokens > 0
    (finished,) = named(log1, "run_finished")
    assert (finished["prompt_tokens"], finished["completion_tokens"]) == (
        prompt_tokens,
        completion_tokens,
    )
    assert f"{prompt_tokens:,} prompt + {completion_tokens:,} completion" in first.stderr
    assert report1["run_finished"]["prompt_tokens"] == prompt_tokens
    assert report1["run_finished"]["completion_tokens"] == completion_tokens

    # Each kept chunk's one-line reason is in the report too.
    warnings = {url: reason for url, reason in report1["warnings"]}
    for event in named(log1, "faithfulness_fallback"):
        assert "\n" not in event["reason"]
        assert event["reason"] in warnings[event["url"]]

    # The re-run asks nothing: every chunk got a verdict (accepted, rejected, or too large
    # for the model even when split), and every verdict is cached with its answer.
    assert served2 == 0, second
    assert named(log2, "llm_request") == []
    (finished2,) = named(log2, "run_finished")
    assert finished2["requests"] == served2
    assert report2["run_finished"]["prompt_tokens"] == finished2["prompt_tokens"]

    # What the model's answers were rejected for (for the closing note).
    reasons = collections.Counter(
        reason_kind(part)
        for event in named(log1, "faithfulness_fallback") + named(log1, "unfaithful_retry")
        for part in event["reason"].split("; ")
    )
    chunks = {(e["url"], e["chunk"]) for e in requests}
    print(
        f"\nreal LLM: {len(requests)} requests for {len(chunks)} chunks, "
        f"{len(named(log1, 'unfaithful_retry'))} retried, "
        f"{len(named(log1, 'faithfulness_fallback'))} kept as crawled; "
        f"run 1 {first.seconds:.0f} s, run 2 {second.seconds:.0f} s ({served2} requests); "
        f"tokens {prompt_tokens} + {completion_tokens}; reasons {dict(reasons)}"
    )
