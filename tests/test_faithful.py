"""The faithfulness check's rules one by one, on small texts, with their one-line reasons.

The properties over real pages are in test_faithful_properties.py.
"""

from __future__ import annotations

import msgspec
import pytest

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts, Vocabulary, non_space
from crawl4ai_llm_docs.llm.faithfulness.judge import (
    CHECK_VERSION,
    FaithfulSettings,
    invented_code,
    judge,
    signatures,
)

SETTINGS = FaithfulSettings()
GETPASS = """# getpass — Portable password input

The module provides two functions:

`getpass.getpass(prompt='Password: ', stream=None)`

Prompt the user for a password without echoing. The user is prompted using the string
_prompt_, which defaults to `'Password: '`.

`getpass.getuser()`

Return the login name of the user. This function checks the environment variables
`LOGNAME`, `USER`, `LNAME` and `USERNAME`, in order.

* Availability: not Emscripten, not WASI.
* See [`pwd`](https://docs.python.org/3/library/pwd.html "pwd: The password database") too.
* Works on Unix and Windows.

```python
import getpass
user = getpass.getuser()
```
"""


def reason(answer: str, chunk: str = GETPASS, **settings: object) -> str | None:
    return judge(chunk, answer, msgspec.structs.replace(SETTINGS, **settings)).reason


def checks(answer: str, chunk: str = GETPASS) -> set[str]:
    return {p.check for p in judge(chunk, answer, SETTINGS).problems}


def test_the_chunk_itself_passes() -> None:
    assert reason(GETPASS) is None


def test_the_answer_of_the_issue_fails_for_every_fault() -> None:
    """getpass.setuser() invented, two items looped five times renumbered, an empty fence."""
    items = ["Call `getpass.setuser()` to set the user.", "Use getpass.setuser(name) first."]
    looped = "\n".join(f"{n}. {items[n % 2]}" for n in range(1, 11))
    answer = f"# getpass\n\n{looped}\n\n```python\nimport getpass\nuser = getpass.getuser()\n```\n\n```\n```\n"
    found = checks(answer)
    assert {"invented", "repetition", "code blocks", "inline code", "text"} <= found
    text = reason(answer)
    assert text is not None
    assert "\n" not in text
    assert "`getpass.setuser()`" in text
    assert "is repeated 5 times" in text


def test_invented_names_are_listed_with_a_count() -> None:
    answer = GETPASS + "\nAlso `getpass.setuser()`, `getpass.reset()` and getpass.wipe(x).\n"
    assert reason(answer) == (
        "3 code spans or names appear nowhere in the chunk: `getpass.reset()`, "
        "`getpass.setuser()`, `getpass.wipe()`"
    )
    assert reason(answer, max_invented_code=3) is None


@pytest.mark.parametrize(
    "addition",
    [
        "`getpass.getuser`",  # a name of the chunk, written another way
        "`getuser()`",  # part of a name the chunk has
        "`prompt`",  # a word of the chunk (there as _prompt_ emphasis)
        "`Password`",  # a plain word, capitalised
        "`getpass`, `USERNAME`",
        "See `docs.python.org` and `library/pwd.html` in [the docs](https://example.org/os.path.html).",
        "A description line, e.g. this one, is no name.",
    ],
)
def test_names_made_of_the_chunks_words_are_not_invented(addition: str) -> None:
    assert "invented" not in checks(GETPASS + "\n" + addition + "\n")


@pytest.mark.parametrize("addition", ["`getUser()`", "`USERNAME2`", "`get_user`", "`LOG_NAME`"])
def test_identifiers_must_keep_their_case_digits_and_underscores(addition: str) -> None:
    assert "invented" in checks(GETPASS + "\n" + addition + "\n")


def test_the_prompt_is_a_source_of_names_too() -> None:
    answer = GETPASS + "\nMade with `crawl4ai-llm-docs` from `<document>`.\n"
    chunk = MarkdownFacts.of(GETPASS)
    assert invented_code(chunk, MarkdownFacts.of(answer)) == ["<document>", "crawl4ai-llm-docs"]
    assert (
        invented_code(chunk, MarkdownFacts.of(answer), prompt="<document> crawl4ai-llm-docs") == []
    )


def test_signatures() -> None:
    found = signatures("Use a.b.c(x) and os.path, e.g. foo(1), 3.11, x.y, file.txt and _init(")
    assert found == {"a.b.c()", "os.path", "foo()", "file.txt", "_init()"}
    assert signatures("no names here") == set()


def test_vocabulary_rules() -> None:
    vocabulary = Vocabulary("The _prompt_ of getUser and foo_bar, USER.")
    assert vocabulary.has("prompt")
    assert vocabulary.has("Prompt")  # a plain word may change case
    assert vocabulary.has("getUser")
    assert not vocabulary.has("GetUser")  # an identifier may not
    assert not vocabulary.has("getUSER")
    assert vocabulary.has("foo_bar")
    assert vocabulary.has("_prompt")  # the emphasis underscores are not part of the name
    assert vocabulary.has("foo")  # plain words split at underscores: foo_bar has foo
    assert not vocabulary.has("use")  # inside USER
    joined = vocabulary | Vocabulary("other")
    assert joined.has("other")
    assert joined.has("getUser")


def test_lost_inline_code() -> None:
    answer = GETPASS.replace("`LOGNAME`, `USER`, `LNAME` and `USERNAME`", "a few variables")
    text = reason(answer)
    assert text is not None
    assert text.startswith("kept 4 of 8 (50%) of the chunk's inline code (at least 80% expected)")
    assert "lost `LNAME`, `LOGNAME`, `USER` and 1 more" in text


def test_inline_code_moved_into_a_code_block_is_kept() -> None:
    answer = GETPASS + "\n```\nLOGNAME USER LNAME USERNAME\n```\n"
    answer = answer.replace("`LOGNAME`, `USER`, `LNAME` and `USERNAME`", "these")
    assert "inline code" not in checks(answer)


def test_a_span_in_a_boilerplate_line_may_go() -> None:
    chunk = GETPASS + "\n* [`getpass.getuser()`](#getpass.getuser)\n* [Next](next.html)\n"
    assert reason(GETPASS, chunk=chunk) is None


def test_code_blocks_lost_changed_empty_or_unclosed() -> None:
    body = GETPASS.split("```python")[0]
    assert reason(body) == "the answer has 0 of the 1 code blocks"
    changed = GETPASS.replace("user = getpass.getuser()", "user = getpass.getuser(1)")
    assert reason(changed) == "code block 1 lost the line 'user = getpass.getuser()'"
    assert reason(GETPASS + "\n```text\n\n```\n") == "the answer has 1 empty code block"
    assert reason(GETPASS + "\n```\n```\n\n~~~\n~~~\n") == "the answer has 2 empty code blocks"
    assert reason(GETPASS + "\n```python\nx = 1\n") is not None
    assert "unclosed fence" in (reason(GETPASS + "\n```python\nprint(user)\n") or "")


def test_structure_reason_counts_each_kind() -> None:
    chunk = (
        "# A\n\n## B b\n\n## C c\n\n* one two\n* three four\n\n| x | y |\n|---|---|\n| 1 | 2 |\n"
    )
    answer = "# A\n\nSomething else entirely, a lot of it, to keep the length.\n"
    assert reason(answer, chunk=chunk, min_text_kept=0.0) == (
        "kept 1 of 7 (14%) of the chunk's headings, list items and table rows (1 of 3 "
        "headings, 0 of 2 list items, 0 of 2 table rows, at least 70% expected)"
    )


def test_repetition_counts_lines_and_sentences() -> None:
    sentence = "The user is prompted for a password."
    looped = GETPASS + "\n" + " ".join([sentence] * 30) + "\n"
    assert "repetition" in checks(looped)
    # As often as the chunk has it: no loop.
    chunk = GETPASS + ("\n\n" + sentence) * 5
    assert "repetition" not in checks(chunk, chunk=chunk)


def test_length_bounds() -> None:
    longer = GETPASS + "".join(f"\nMore words, number {n}." for n in range(100))
    text = reason(longer) or ""
    assert text.startswith("the answer is 4")
    assert text.endswith(
        "% of the source's length (at most 300% expected, plus 200 characters of formatting)"
    )
    assert "at least 35% expected" in (reason("# getpass") or "")
    assert reason("tiny " * 50, chunk="tiny") is None  # below 200 characters, no upper bound


def test_text_kept() -> None:
    half = GETPASS[: len(GETPASS) // 2]
    filler = "lorem ipsum dolor sit amet " * 40
    text = reason(half + filler[: len(GETPASS) - len(half)])
    assert text is not None
    assert "of the chunk's text (word pairs, at least 70% expected)" in text


def test_reflow_relevel_and_markers_change_nothing() -> None:
    answer = (
        GETPASS.replace("# getpass", "## getpass")
        .replace("\n_prompt_", " _prompt_")
        .replace("* ", "1. ")
        .replace("`LOGNAME`, `USER`", "`LOGNAME`,\n`USER`")
    )
    assert reason(answer) is None


def test_entities_escapes_and_windows_line_ends_read_the_same() -> None:
    chunk = "Use `a &lt; b` when x\\_y is set.\r\n\r\nMore text follows here with words.\r\n"
    answer = "Use `a &lt; b` when x_y is set.\n\nMore text follows here with words.\n"
    assert reason(answer, chunk=chunk) is None


def test_double_backtick_spans() -> None:
    chunk = "Write ``a `b` c`` and `d` in the text, with some more words around them."
    assert MarkdownFacts.of(chunk).spans == frozenset({"a `b` c", "d"})
    assert "inline code" in checks("Write a b c and d in the text.", chunk=chunk)


def test_settings_come_from_the_config_and_name_the_check() -> None:
    llm = LLMConfig(min_text_kept=0.5, max_repeats=9)
    settings = FaithfulSettings.from_llm(llm)
    assert (settings.min_text_kept, settings.max_repeats) == (0.5, 9)
    assert settings.fingerprint() == FaithfulSettings.from_llm(llm).fingerprint()
    assert settings.fingerprint() != SETTINGS.fingerprint()
    assert CHECK_VERSION >= 1


def test_non_space_counts_spaces_and_line_ends_only() -> None:
    assert non_space(" a b\nc\r\n") == 4


def test_empty_texts() -> None:
    assert judge("", "", SETTINGS).ok
    assert reason("", chunk="") is None
