"""Edit mode through the real CLI against a real LLM: SmolLM2-135M behind llama-cpp-python's
server (``tests/llama_server.py``), on real Sphinx pages (python-click-doc) served on loopback.

The server refuses OpenAI's ``json_schema`` form (an HTTP 500 naming ``response_format``) and
takes ``json_object`` with a schema, which it compiles into a grammar. Whatever the 135M model
answers, what must hold:

- the run moves to the form the server takes, once, and every chunk gets a verdict (exit 0:
  an unusable script keeps the crawled text, it is no failure);
- no request generates more than ``edit_max_tokens`` (by the server's own count, from its
  log) and no chunk is split;
- every code block of the crawled pages is in the output (markdown-it-py), and no inline-code
  span of the output is grounded nowhere (the model's words never become content);
- a re-run sends no request.

Kept short (two pages, small chunks); prints how many scripts were accepted (``pytest -s``).
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
from markdown_it import MarkdownIt
from test_e2e_real_llm import ungrounded

from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.observe.events import decode_event
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

pytestmark = pytest.mark.slow

CLICK = Path("/usr/share/doc/python-click-doc/html")
PAGES = ("prompts.html", "wincmd.html")
CONFIG = """
[llm]
cleaning = "edit"
temperature = 0.0
chunk_max_tokens = 384
chunk_min_tokens = 128
[parallel]
max_concurrent_requests = 1
request_timeout = 900
"""
RUN_TIMEOUT_S = max(HANG_GUARD_S, 1200.0)
_GENERATED = re.compile(r"eval time =.*?/\s+(\d+) runs")
_MD = MarkdownIt("commonmark")


def code_blocks(markdown: str) -> collections.Counter[str]:
    return collections.Counter(
        t.content for t in _MD.parse(markdown) if t.type in ("fence", "code_block")
    )


def events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        decode_event(line)
    return [json.loads(line) for line in lines]


def named(log: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in log if event["event"] == name]


@pytest.mark.timeout(1800)
def test_real_llm_edit_scripts(llama_server: LlamaServer, tmp_path: Path) -> None:
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
            served_before = llama_server.requests_served()
            server_log = llama_server.log_path.read_text(errors="replace")
            log = tmp_path / f"run{number}.jsonl"
            result = run_cli(
                [*base, *llm, "-o", str(output), "--log-json", str(log)],
                cwd=tmp_path,
                env=env,
                timeout=RUN_TIMEOUT_S,
            )
            assert result.code == 0, result
            generated = llama_server.log_path.read_text(errors="replace")[len(server_log) :]
            served = llama_server.requests_served() - served_before
            runs.append((result, events(log), served, generated))

    (first, log1, _, generated1), (_, log2, served2, _) = runs
    requests = named(log1, "llm_request")
    assert requests
    # The server's form was found once; refusals are not failures, and nothing was split.
    warnings = [e["message"] for e in named(log1, "warning")]
    assert sum("refused response_format" in w for w in warnings) == 1, warnings
    # The one refused request (llama-cpp-python answers it with a 500), then only answers.
    assert generated1.count('/chat/completions HTTP/1.1" 500') == 1
    assert generated1.count('/chat/completions HTTP/1.1" 200') == len(requests)
    assert all(e["outcome"] == "ok" for e in requests), requests
    # No request generated more than the edit budget, by the server's own count.
    budget = load_config(environ={}).config.llm.edit_max_tokens
    counts = [int(n) for n in _GENERATED.findall(generated1)]
    assert len(counts) == len(requests)
    assert max(counts) <= budget
    # Code blocks all kept; nothing in inline code that the page and prompt do not ground.
    crawled_text = (tmp_path / "crawled.md").read_text(encoding="utf-8")
    text = output.read_text(encoding="utf-8")
    assert code_blocks(text) == code_blocks(crawled_text)
    prompt = load_config(environ={}).config.llm
    sources = "\n".join([crawled_text, prompt.edit_system_prompt, prompt.user_prompt, *PAGES])
    assert ungrounded(text, sources) == []
    # The re-run asks nothing: every script was judged and cached with its verdict.
    assert served2 == 0
    assert named(log2, "llm_request") == []

    chunks = {(e["url"], e["chunk"]) for e in requests}
    rejected = named(log1, "unfaithful_retry") + named(log1, "faithfulness_fallback")
    print(
        f"\nreal LLM, edit mode: {len(requests)} requests for {len(chunks)} chunks, "
        f"{len(requests) - len(rejected)} scripts accepted, "
        f"{len(chunks) - len(named(log1, 'faithfulness_fallback'))} chunks cleaned; "
        f"server tokens generated {counts}; {first.seconds:.0f} s; "
        f"reasons {[e['reason'][:80] for e in rejected]}"
    )
