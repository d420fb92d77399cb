"""Whether an LLM answer can stand in for its chunk: cheap, deterministic comparisons.

``judge(chunk, answer, settings, prompt=...)`` runs every check and returns a ``Verdict``; an
answer passes when it has no problem. Each problem is one line saying what was lost or added:

    inline code   the share of the chunk's distinct inline-code spans found in the answer (as
                  spans, or in its code blocks) is below ``min_inline_code_kept``
    invented      more than ``max_invented_code`` code spans or signatures (``name(``,
                  ``dotted.name``) of the answer are grounded nowhere: not in the chunk's text,
                  not in the prompt, and not made only of words the chunk or the prompt use
    code blocks   fewer code blocks than the chunk, a line of a chunk's code block in none of
                  the answer's (whitespace aside), an empty code block or an unclosed fence
                  the chunk does not have
    structure     fewer than ``min_structure_kept`` of the chunk's headings, list items and
                  table rows are present (by their words, so re-levelled headings, changed list
                  markers and realigned tables still count)
    text          fewer than ``min_text_kept`` of the word pairs of the chunk's prose appear in
                  the answer: catches content replaced by filler of the same length
    repetition    a line or sentence appears more than ``max_repeats`` times, and more often
                  than in the chunk
    length        the answer's non-space characters are below ``min_output_ratio`` of the
                  chunk's (boilerplate left out: it may go), or above ``max_output_ratio`` of
                  them (boilerplate counted: it may stay) plus a small allowance for what a
                  model adds around any text (a heading, a fence), which decides for tiny chunks

Boilerplate (blocks made only of links) may be dropped without counting against the answer.
Reflowing paragraphs, re-levelling headings and changing list markers change no word, so a
faithful rewrite keeps every measure at or near 100 %.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Literal

import msgspec

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts, Vocabulary, non_space, one_line

# Bump when a check changes meaning: cached verdicts are then judged again.
CHECK_VERSION = 2

CheckName = Literal[
    "inline code", "invented", "code blocks", "structure", "text", "repetition", "length"
]
CHECKS: tuple[CheckName, ...] = (
    "inline code",
    "invented",
    "code blocks",
    "structure",
    "text",
    "repetition",
    "length",
)

# Measures below these sizes say little (one lost heading of two is 50 %): not judged.
MIN_STRUCTURE_ITEMS = 3
MIN_TEXT_PAIRS = 3
TEXT_SLACK_PAIRS = 2
# Non-space characters an answer may add besides max_output_ratio: a tiny chunk grows with the
# title as a heading and some formatting (a 5-word page is not "1886% of its length" unfaithful).
LENGTH_ALLOWANCE = 200
MIN_REPEATED_CHARS = 12  # shorter lines ("```", "Returns:") repeat legitimately
EXAMPLES_SHOWN = 3

# Signatures (a name called, or a dotted name) are found from their "(" and "." (the regex
# engine skips to a literal quickly, where a pattern starting with a name is tried at every
# character, four times slower): calls in the reversed text, dotted names at each dot.
_CALL_REVERSED = re.compile(r"\(((?:\w+\.)*\w+)")
_DOT = re.compile(r"\.(?=[A-Za-z_])")
_NAME_REVERSED = re.compile(r"[\w.]*")
_DOTTED = re.compile(r"(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*")
_TOKEN = re.compile(r"\w+")


class FaithfulSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The thresholds, from ``[llm]`` (see ``defaults.toml``)."""

    min_output_ratio: float = 0.35
    max_output_ratio: float = 3.0
    min_inline_code_kept: float = 0.8
    max_invented_code: int = 0
    min_structure_kept: float = 0.7
    min_text_kept: float = 0.7
    max_repeats: int = 3

    @classmethod
    def from_llm(cls, llm: LLMConfig) -> FaithfulSettings:
        return cls(
            min_output_ratio=llm.min_output_ratio,
            max_output_ratio=llm.max_output_ratio,
            min_inline_code_kept=llm.min_inline_code_kept,
            max_invented_code=llm.max_invented_code,
            min_structure_kept=llm.min_structure_kept,
            min_text_kept=llm.min_text_kept,
            max_repeats=llm.max_repeats,
        )

    def fingerprint(self) -> str:
        """Names this check and its settings: a verdict made under another one is stale."""
        data = msgspec.json.encode([CHECK_VERSION, self])
        return hashlib.sha256(data).hexdigest()[:16]


class Problem(msgspec.Struct, frozen=True):
    check: CheckName
    reason: str  # one line


class Verdict(msgspec.Struct, frozen=True):
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str | None:
        """Every problem, on one line; None when the answer passes."""
        return "; ".join(p.reason for p in self.problems) if self.problems else None


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.0%})"


def _examples(items: list[str]) -> str:
    shown = []
    for item in sorted(items)[:EXAMPLES_SHOWN]:
        item = one_line(item)
        item = item if len(item) <= 40 else item[:37] + "..."
        shown.append(f"`{item}`" if "`" not in item else repr(item))
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(slots=True)
class _Context:
    chunk: MarkdownFacts
    answer: MarkdownFacts
    settings: FaithfulSettings
    prompt: str


def judge(
    chunk: str | MarkdownFacts,
    answer: str,
    settings: FaithfulSettings,
    *,
    prompt: str = "",
) -> Verdict:
    """The verdict on ``answer`` (the Markdown of a model's answer) for ``chunk``.

    ``chunk`` may be given as its ``MarkdownFacts`` (to judge several answers for one chunk).
    ``prompt`` is the text the model was given besides the chunk (system prompt, template,
    URL, title): identifiers from it are not invented.
    """
    source = chunk if isinstance(chunk, MarkdownFacts) else MarkdownFacts.of(chunk)
    context = _Context(
        chunk=source,
        answer=MarkdownFacts.of(answer),
        settings=settings,
        prompt=prompt,
    )
    results: list[tuple[CheckName, str | None]] = [
        ("inline code", _inline_code(context)),
        ("invented", _invented(context)),
        ("code blocks", code_blocks_problem(context.chunk, context.answer)),
        ("structure", _structure(context)),
        ("text", _text(context)),
        ("repetition", _repetition(context)),
        ("length", _length(context)),
    ]
    return Verdict(tuple(Problem(check, reason) for check, reason in results if reason))


# ---------------------------------------------------------------- inline code kept


def _inline_code(context: _Context) -> str | None:
    wanted = context.chunk.content_spans
    if not wanted:
        return None
    lost = list(wanted - context.answer.spans)
    if lost and context.answer.code_blocks:  # a span may have become a line of code
        code = one_line("\n".join("\n".join(block.body) for block in context.answer.code_blocks))
        lost = [span for span in lost if span not in code]
    kept = len(wanted) - len(lost)
    if kept >= context.settings.min_inline_code_kept * len(wanted):
        return None
    return (
        f"kept {_share(kept, len(wanted))} of the chunk's inline code "
        f"(at least {context.settings.min_inline_code_kept:.0%} expected), lost {_examples(lost)}"
    )


# ---------------------------------------------------------------- nothing invented


def _candidates(chunk: MarkdownFacts, answer: MarkdownFacts) -> set[str]:
    """The answer's code spans, and the signatures on its lines (prose or code) that are not
    lines of the chunk: a line the chunk has brings no new name, and skipping those keeps the
    check fast."""
    found = set(answer.spans)
    text = "\n".join(set(answer.lines).difference(chunk.lines))
    if "://" in text:
        text = _BARE_URL.sub(" ", text)
    return found | signatures(text)


def signatures(text: str) -> set[str]:
    """Names called (``name()``, ``a.b()``) and dotted names (``a.b``) in ``text``; "e.g"
    and the like (every part one letter) are not names."""
    found: set[str] = set()
    if "(" in text:
        for reversed_name in _CALL_REVERSED.findall(text[::-1]):
            name = reversed_name[::-1]
            if name[0].isalpha() or name[0] == "_":
                found.add(name + "()")
    if "." in text:
        reversed_text = text[::-1]
        starts: set[int] = set()
        for dot in _DOT.finditer(text):
            left = _NAME_REVERSED.match(reversed_text, len(text) - dot.start())
            start = dot.start() - (left.end() - left.start() if left else 0)
            if start in starts:
                continue
            starts.add(start)
            match = _DOTTED.match(text, start)
            name = match.group(0) if match else ""
            if any(len(part) > 1 for part in name.split(".")) and name + "()" not in found:
                found.add(name)
    return found


_BARE_URL = re.compile(r"<?https?://[^\s>)]*+>?")


def invented_code(chunk: MarkdownFacts, answer: MarkdownFacts, *, prompt: str = "") -> list[str]:
    """The answer's code spans and signatures grounded nowhere: not in the chunk's text or
    the prompt, and not made only of words the chunk or the prompt use."""
    # The chunk's own spans are grounded: a set difference settles most candidates at once.
    candidates = _candidates(chunk, answer) - chunk.spans
    vocabulary: Vocabulary | None = None
    invented: list[str] = []
    # Without Markdown escapes (``a\_b``): a name (no backslash) in the text is in this too.
    text = chunk.text.replace("\\", "") if "\\" in chunk.text else chunk.text
    for candidate in sorted(candidates):
        bare = candidate.removesuffix("()")
        if bare in text or bare in prompt:
            continue  # a substring search in C: cheaper than building the vocabulary
        if " " in bare and (bare in chunk.flat or bare in one_line(prompt)):
            continue  # the chunk has it, wrapped over lines
        vocabulary = vocabulary or chunk.vocabulary | Vocabulary(prompt)
        if all(vocabulary.has(token) for token in _TOKEN.findall(bare)):
            continue  # made of the chunk's own words: `getpass` for "getpass", `a.b` ...
        invented.append(candidate)
    return invented


def _invented(context: _Context) -> str | None:
    invented = invented_code(context.chunk, context.answer, prompt=context.prompt)
    if len(invented) <= context.settings.max_invented_code:
        return None
    return f"{len(invented)} code spans or names appear nowhere in the chunk: {_examples(invented)}"


# ---------------------------------------------------------------- code blocks kept


def code_blocks_problem(chunk: MarkdownFacts, answer: MarkdownFacts) -> str | None:
    """Code blocks lost or changed, or fences broken, compared with the chunk's."""
    source_blocks, answer_blocks = chunk.code_blocks, answer.code_blocks
    if len(answer_blocks) < len(source_blocks):
        return f"the answer has {len(answer_blocks)} of the {len(source_blocks)} code blocks"
    # Most code comes back unchanged: compare whole blocks first, line by line only if not.
    answer_bodies = {"\n".join(block.body) for block in answer_blocks}
    answer_lines: set[str] | None = None
    for number, block in enumerate(source_blocks, start=1):
        if "\n".join(block.body) in answer_bodies:
            continue
        if answer_lines is None:
            answer_lines = {one_line(line) for block in answer_blocks for line in block.body}
        for line in block.body:
            if line.strip() and one_line(line) not in answer_lines:
                shown = one_line(line)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                return f"code block {number} lost the line {shown!r}"
    empty = sum(1 for block in answer_blocks if not any(line.strip() for line in block.body))
    empty_before = sum(1 for block in source_blocks if not any(line.strip() for line in block.body))
    if empty > empty_before:
        return f"the answer has {empty} empty code block{'s' if empty > 1 else ''}"
    if answer.unclosed_fence and not chunk.unclosed_fence:
        return "the answer ends inside a code block (an unclosed fence)"
    return None


# ---------------------------------------------------------------- structure and text kept


def _present(words: list[bytes], answer: MarkdownFacts) -> bool:
    """Whether at least half of an item's word pairs (or its one word) are in the answer."""
    if len(words) == 1:
        return words[0] in answer.word_set
    item_pairs = set(itertools.pairwise(words))
    return 2 * len(item_pairs & answer.pairs) >= len(item_pairs)


def _structure(context: _Context) -> str | None:
    items = context.chunk.items
    if len(items) < MIN_STRUCTURE_ITEMS:
        return None
    totals: dict[str, list[int]] = {}  # kind -> [kept, total]
    for kind, words in items:
        counts = totals.setdefault(kind, [0, 0])
        counts[0] += _present(words, context.answer)
        counts[1] += 1
    kept = sum(counts[0] for counts in totals.values())
    wanted = context.settings.min_structure_kept
    if kept >= wanted * len(items):
        return None
    detail = ", ".join(f"{k} of {n} {kind}s" for kind, (k, n) in totals.items())
    return (
        f"kept {_share(kept, len(items))} of the chunk's headings, list items and table rows "
        f"({detail}, at least {wanted:.0%} expected)"
    )


def _text(context: _Context) -> str | None:
    wanted = context.chunk.content_pairs
    if len(wanted) < MIN_TEXT_PAIRS:
        return None
    kept = len(wanted & context.answer.pairs)
    threshold = context.settings.min_text_kept
    # The slack keeps one changed word in a short chunk from deciding alone.
    if kept >= threshold * len(wanted) - TEXT_SLACK_PAIRS:
        return None
    return (
        f"kept {kept / len(wanted):.0%} of the chunk's text (word pairs, at least "
        f"{threshold:.0%} expected): content was replaced or dropped"
    )


# ---------------------------------------------------------------- repetition


def _repetition(context: _Context) -> str | None:
    limit = context.settings.max_repeats
    suspects = {
        key: n
        for key, n in context.answer.pieces.items()
        if n > limit and len(key) >= MIN_REPEATED_CHARS
    }
    if not suspects:
        return None
    before = context.chunk.pieces
    # As often as in the chunk is no loop, also when the chunk has it inside longer lines.
    looped = {
        key: n
        for key, n in suspects.items()
        if n > before.get(key, 0) and n > context.chunk.plain.count(key)
    }
    if not looped:
        return None
    key, times = max(looped.items(), key=lambda item: item[1])
    shown = one_line(key)
    shown = shown if len(shown) <= 50 else shown[:47] + "..."
    return (
        f"the line {shown!r} is repeated {times} times ({before.get(key, 0)} in the chunk, "
        f"at most {limit} allowed)"
    )


# ---------------------------------------------------------------- length


def _length(context: _Context) -> str | None:
    # Boilerplate the answer may drop does not count in the lower bound, and boilerplate it
    # keeps counts in the upper one.
    return _length_problem(
        context.chunk.content_size,
        non_space(context.answer.text),
        context.settings,
        whole=non_space(context.chunk.text),
    )


def length_problem(chunk: str, answer: str, settings: FaithfulSettings) -> str | None:
    """Whether ``answer`` is too short or too long for ``chunk`` (non-space characters)."""
    return _length_problem(non_space(chunk), non_space(answer), settings)


def _length_problem(
    source_size: int, answer_size: int, settings: FaithfulSettings, *, whole: int | None = None
) -> str | None:
    whole = source_size if whole is None else whole
    if source_size and answer_size < settings.min_output_ratio * source_size:
        return (
            f"the answer is {answer_size / source_size:.0%} of the source's length "
            f"(at least {settings.min_output_ratio:.0%} expected)"
        )
    if answer_size > settings.max_output_ratio * whole + LENGTH_ALLOWANCE:
        return (
            f"the answer is {answer_size / max(whole, 1):.0%} of the source's length "
            f"(at most {settings.max_output_ratio:.0%} expected, plus {LENGTH_ALLOWANCE} "
            "characters of formatting)"
        )
    return None
