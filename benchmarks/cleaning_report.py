"""The tables of ``bench_cleaning.py``: its results (``results/cleaning.json``) as Markdown."""

from __future__ import annotations

import collections
from typing import Any

from common import md_table

# The fake provider of bench_cleaning.py: 50 tokens/s, so completion time dominates; prices
# in USD per million tokens (gpt-4o-mini's).
LATENCY_S = 0.5
LATENCY_PER_1K_TOKENS_S = 20.0
PRICES = {"input": 0.15, "output": 0.60}

FAKE_COLUMNS = (
    "mode | requests | prompt tokens | completion tokens | LLM phase s | cost $ | "
    "code blocks kept | inline code kept | output chars"
)
LLAMA_COLUMNS = (
    "mode | chunks | requests | answers accepted | chunks cleaned | stopped / cut off (server "
    "saw the client leave) | splits | completion tokens (client) | generated | most in one "
    "request | requests over the cap | LLM phase s | crawled lines changed | code blocks kept | "
    "inline code kept"
)


def _share(pair: Any) -> str:
    return "{} of {}".format(*(pair or ("?", "?")))


def _fake_row(name: str, m: dict[str, Any]) -> list[Any]:
    return [
        name, m["requests"], m["prompt_tokens"], m["completion_tokens"], m["llm_phase_s"],
        f"{m['cost_usd']:.5f}", _share(m["code_blocks_kept"]), _share(m["inline_code_kept"]),
        m["output_chars"],
    ]  # fmt: skip


def _llama_row(name: str, m: dict[str, Any]) -> list[Any]:
    generated = m["server_generated"]
    return [
        name, m["chunks"], m["requests"], f"{m['answers_accepted']} of {m['answers']}",
        f"{m['chunks_cleaned']} of {m['chunks']}",
        f"{m['stopped_or_cut_off']} ({m.get('server_disconnects', '?')})", m["splits"],
        m["completion_tokens_client"], sum(generated), max(generated, default=0),
        m["requests_over_cap"], m["llm_phase_s"],
        f"{m.get('lines_changed', '?')} of {m.get('crawled_lines', '?')}",
        _share(m.get("code_blocks_kept")), _share(m.get("inline_code_kept")),
    ]  # fmt: skip


def render(data: dict[str, Any]) -> str:
    out = ["# Cleaning: rewrite vs edit script", "", f"Machine: {data['machine_note']}", ""]
    fake = data.get("fake")
    if fake:
        r, e = fake["modes"]["rewrite"], fake["modes"]["edit"]
        out += [
            f"## Fake provider, {len(fake['pages'])} python3.11-doc library pages",
            "",
            f"Provider: latency {LATENCY_S:g} s + {LATENCY_PER_1K_TOKENS_S:g} s per 1,000 "
            "completion tokens (50 tokens/s), `--max-concurrent 4`; cost at gpt-4o-mini prices "
            f"(${PRICES['input']}/${PRICES['output']} per million prompt/completion tokens). "
            "Code kept: compared with the crawled pages (`--no-llm`) by markdown-it-py.",
            "",
            md_table(
                FAKE_COLUMNS.split(" | "),
                [_fake_row(name, m) for name, m in (("rewrite", r), ("edit", e))],
            ),
            "",
            f"Edit / rewrite: completion tokens **{e['completion_tokens'] / r['completion_tokens']:.1%}** "
            f"(target <= 15%), LLM phase **{e['llm_phase_s'] / r['llm_phase_s']:.1%}** (target <= 35%), "
            f"prompt tokens {e['prompt_tokens'] / r['prompt_tokens']:.2f}x, "
            f"cost {e['cost_usd'] / r['cost_usd']:.1%}. Crawled pages: {fake['crawled_chars']:,} characters.",
            "",
        ]
    llama = data.get("llama")
    if llama:
        rows = [_llama_row(name, m) for name, m in llama["modes"].items()]
        out += [
            f"## Real llama.cpp server (SmolLM2-135M), {len(llama['pages'])} pages: "
            + ", ".join(llama["pages"]),
            "",
            "llama-cpp-python's server, one CPU thread, `--max-concurrent 1`, chunks of at most "
            "1,024 tokens, the default prompts, temperature 0.1 then 0 for the retry. "
            "Generated: tokens per request by the server's own count (its log), or by the "
            "client's for an answer it stopped; the cap is the request's `max_tokens` (rewrite: "
            "what `max_output_ratio` allows the chunk; edit: `edit_max_tokens`).",
            "",
            md_table(LLAMA_COLUMNS.split(" | "), rows),
            "",
        ]
        for name, m in llama["modes"].items():
            reasons = collections.Counter(r.split(":")[0][:60] for r in m["reasons"])
            out.append(f"- {name}: rejected answers by reason: {dict(reasons)}")
        out.append("")
    return "\n".join(out)
