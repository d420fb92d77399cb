"""Markdown first's decisions (crawl/markdown_check.py, crawl/markdown_first.py).

The pages and their Markdown come from the bundled site's generator (testing/site), written
independently of the checker: a faithful rendition passes whatever its style, one that lost a
code block, its title or most of its text does not. ``MarkdownFirst`` is driven with a fake
fetch that records what was asked for (a unit test: no network).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.crawl.markdown_check import lacks
from crawl4ai_llm_docs.crawl.markdown_first import MarkdownFirst, Offer
from crawl4ai_llm_docs.fetch.http import Fetched, FetchFailure
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.testing.site.markdown import generated_markdown
from crawl4ai_llm_docs.testing.site.pages import generated_page, page_content, page_title

pages = st.integers(0, 500)
sizes = st.tuples(st.integers(1, 5), st.integers(1, 4))  # sections, paragraphs


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(index=pages, size=sizes, style=st.sampled_from(("fenced", "indented", "tilde")))
def test_a_faithful_markdown_passes_in_any_style(
    index: int, size: tuple[int, int], style: str
) -> None:
    sections, paragraphs = size
    html = generated_page(index, sections=sections, paragraphs=paragraphs)
    markdown = generated_markdown(index, sections=sections, paragraphs=paragraphs)
    if style == "indented":  # code as an indented block: the same lines, another syntax
        markdown = re.sub(
            r"```python\n(.*?)\n```",
            lambda m: "\n".join("    " + line for line in m.group(1).splitlines()),
            markdown,
            flags=re.DOTALL,
        )
    elif style == "tilde":
        markdown = markdown.replace("```python", "~~~py").replace("```", "~~~")
    assert lacks(markdown, html) == ""


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(index=pages, size=sizes, data=st.data())
def test_a_markdown_without_one_code_block_is_not_used(
    index: int, size: tuple[int, int], data: st.DataObject
) -> None:
    sections, paragraphs = size
    html = generated_page(index, sections=sections, paragraphs=paragraphs)
    markdown = generated_markdown(index, sections=sections, paragraphs=paragraphs)
    blocks = re.findall(r"```python\n.*?\n```\n", markdown, flags=re.DOTALL)
    dropped = data.draw(st.integers(0, len(blocks) - 1))
    reason = lacks(markdown.replace(blocks[dropped], "", 1), html)
    first_line = (
        page_content(index, sections=sections, paragraphs=paragraphs)
        .sections[dropped]
        .code.splitlines()[0]
    )
    assert reason.startswith(f"it lacks 1 of the {len(blocks)} code blocks of the HTML")
    assert repr(first_line) in reason


def test_a_missing_title_or_most_of_the_text_is_noticed() -> None:
    html = generated_page(3, sections=4, paragraphs=3)
    markdown = generated_markdown(3, sections=4, paragraphs=3)
    renamed = markdown.replace("Commands 3", "Other page")  # the title appears nowhere
    assert "lacks the page's title 'Commands 3'" in lacks(renamed, html)
    prose_only_start = "\n".join(
        line for line in markdown.splitlines() if not line or line[0] in "#`|" or "def " in line
    )
    code_kept = (
        prose_only_start
        + "\n"
        + "\n".join(line for line in markdown.splitlines() if line.startswith("    "))
    )
    assert "words where the HTML's main content has" in lacks(code_kept, html)
    assert lacks("   \n", html) == "it is empty"
    assert lacks(markdown, "") == ""  # nothing to compare with


def _fetched(url: str, body: str, content_type: str, link: str = "") -> Fetched:
    return Fetched(
        final_url=url,
        status=200,
        html=body,
        bytes=len(body),
        content_type=content_type,
        link_header=link,
    )


class _Site:
    """A fake fetch: answers by URL and records (url, accept) of every request."""

    def __init__(self, answers: dict[str, Fetched | FetchFailure]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    async def __call__(
        self, url: str, accept: str, types: Sequence[str], route: Route
    ) -> Fetched | FetchFailure:
        self.asked.append((url, accept))
        answer = self.answers.get(url, FetchFailure("HTTP 404 Not Found", status=404))
        if isinstance(answer, Fetched) and answer.content_type not in types:
            return FetchFailure(f"not wanted ({answer.content_type})")
        return answer


PAGE = "https://docs.example.com/docs/page-001.html"
HTML = generated_page(1)
MD = generated_markdown(1)


async def test_a_negotiated_answer_fetches_the_html_again() -> None:
    site = _Site({PAGE: _fetched(PAGE, HTML, "text/html")})
    first = _fetched(PAGE, MD, "text/markdown")
    offer = await MarkdownFirst("auto", site).offer(first, Route())
    assert offer is not None
    assert [accept.split(",")[0] for _, accept in site.asked] == ["text/html"]
    assert (offer.page.content_type, offer.markdown) == ("text/html", first)
    assert offer.bytes == len(HTML) + len(MD)
    content = MarkdownFirst("auto", site).content(offer, _never_converted)
    assert (content.source_format, content.problem) == ("markdown", "")
    assert content.title == page_title(1)  # as converting names it: the site's name goes
    assert content.site_name == "Example Docs"


async def test_a_negotiated_answer_without_html_is_used_and_says_so() -> None:
    site = _Site({PAGE: FetchFailure("HTTP 500 Internal Server Error", status=500)})
    hook = MarkdownFirst("auto", site)
    offer = await hook.offer(_fetched(PAGE, MD, "text/markdown"), Route())
    assert offer is not None
    content = hook.content(offer, _never_converted)
    assert content.source_format == "markdown"
    assert content.problem == (
        "the HTML could not be fetched to check the Markdown against "
        "(HTTP 500 Internal Server Error)"
    )


async def test_a_markdown_file_url_is_its_own_page() -> None:
    url = PAGE + ".md"
    site = _Site({})
    offer = await MarkdownFirst("auto", site).offer(_fetched(url, MD, "text/markdown"), Route())
    assert offer is not None
    assert (site.asked, offer.html, offer.bytes) == ([], "", len(MD))


@pytest.mark.parametrize("prefer", ["auto", "always"])
async def test_an_advertised_alternate_is_fetched_and_checked(prefer: str) -> None:
    link = f"<{PAGE}.md>; rel=alternate; type=text/markdown"
    broken = MD.replace("```python\n", "```python\n# ", 1).split("## Section 2")[0]
    site = _Site({PAGE + ".md": _fetched(PAGE + ".md", broken, "text/markdown")})
    first = _fetched(PAGE, HTML, "text/html", link)
    hook = MarkdownFirst(prefer, site)  # type: ignore[arg-type]
    offer = await hook.offer(first, Route())
    assert offer is not None
    assert site.asked == [(PAGE + ".md", site.asked[0][1])]
    if prefer == "auto":
        content = hook.content(offer, lambda: _Converted("from html"))
        assert (content.source_format, content.markdown) == ("html", "from html")
        assert content.problem.startswith(f"the Markdown at {PAGE}.md was not used: it lacks")
    else:
        content = hook.content(offer, _never_converted)
        assert content.source_format == "markdown"
        assert "was used though it lacks" in content.problem


async def test_a_missing_alternate_says_so_and_a_missing_guess_says_nothing() -> None:
    link = f"<{PAGE}.md>; rel=alternate; type=text/markdown"
    site = _Site({})
    named = await MarkdownFirst("auto", site).offer(
        _fetched(PAGE, HTML, "text/html", link), Route()
    )
    assert named is not None
    assert named.problem == f"the Markdown at {PAGE}.md could not be fetched: HTTP 404 Not Found"
    guessed = await MarkdownFirst("always", site).offer(_fetched(PAGE, HTML, "text/html"), Route())
    assert guessed is not None
    assert guessed.problem == ""
    assert [url for url, _ in site.asked[1:]] == [PAGE + ".md", PAGE.removesuffix(".html") + ".md"]
    nothing = await MarkdownFirst("auto", site).offer(_fetched(PAGE, HTML, "text/html"), Route())
    assert nothing == Offer(page=_fetched(PAGE, HTML, "text/html"), html=HTML)
    assert len(site.asked) == 3  # auto guesses nothing
    assert (
        await MarkdownFirst("never", site).offer(_fetched(PAGE, HTML, "text/html"), Route()) is None
    )


class _Converted:
    def __init__(self, markdown: str) -> None:
        self.title, self.markdown, self.words = "T", markdown, 2
        self.site_name, self.problem = "", ""


def _never_converted() -> _Converted:
    raise AssertionError("the HTML was converted")


def test_line_numbers_navigation_and_a_title_from_the_head() -> None:
    """Pygments' line numbers (inline, or a table column) are not code; a <pre> in the
    navigation is not the page's; without an H1 the title is <title> before its site name."""
    html = (
        "<html><head><title>Guide — Example Site</title></head><body>"
        "<nav><pre>menu_item_one()</pre></nav>"
        "<p>" + "Some words of the page. " * 10 + "</p>"
        '<div class="highlight"><pre><span class="linenos">1</span>import example\n'
        '<span class="linenos">2</span>example.run(fast=True)</pre></div>'
        '<table class="highlighttable"><tr><td class="linenos"><pre>1\n2</pre></td>'
        '<td class="code"><pre>print("second block")\nprint("ends")</pre></td></tr></table>'
        "</body></html>"
    )
    markdown = (
        "# Guide\n\n" + "Some words of the page. " * 10 + "\n\n"
        "```python\nimport example\nexample.run(fast=True)\n```\n\n"
        '```python\nprint("second block")\nprint("ends")\n```\n'
    )
    assert lacks(markdown, html) == ""
    assert "lacks the page's title 'Guide'" in lacks(markdown.replace("# Guide", "# Other"), html)
    without = markdown.replace('print("second block")\nprint("ends")', "")
    assert "lacks 1 of the 2 code blocks" in lacks(without, html)
    assert lacks(markdown, html, css_selector="p") == ""  # a selector: only its content counts
