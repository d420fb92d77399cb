"""What a person or an agent types, as an FTS5 query that ranks well.

Raw text is not FTS5 syntax (``C++``, ``foo-bar`` or a lone ``AND`` are syntax errors), and a
question asked in plain words rarely has every one of its words in one section. So the words
are taken out of the text and each is quoted; function words ("how", "do", "the") are dropped
unless nothing else is left; and the query is a disjunction ranked by BM25, which already
scores a section higher the more of the words it has and the rarer they are. Besides the
words themselves (none of these is required):

- an identifier's parts, which the tokenizer splits (``subprocess.run``, ``default_factory``,
  ``0.1``), also as the phrase they make;
- two neighbouring words also joined as one (``time zone`` -> ``timezone``, ``unit test`` ->
  ``unittest``): API names are often the words of a question run together;
- the other spellings of a word that documentation uses (``thesaurus.py``: ``dict`` ->
  ``dictionary``, ``folder`` -> ``directory``).

(Neighbouring words as a ``NEAR`` group were tried and left out: FTS5's bm25 cannot weigh a
group below a word, so the group counted its words twice; on the Python 3.11 queries it
lowered recall@1 from 0.675 to 0.6, see ``benchmarks/bench_search.py``.)

A quoted "exact phrase" is required as written. When nothing matches at all, the words are
tried as prefixes (``memoiz*``): inflections the stemmer does not join, words cut short.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from crawl4ai_llm_docs.search.thesaurus import alternatives

# English function words: they say how a question is asked, not what it is about.
_STOPWORDS_TEXT = """a about above after again against all am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don down during each even ever every few for from further get gets getting give had hadn
    has hasn have haven having he her here hers herself him himself his how i if in into is
    isn it its itself just let lets like ll make makes me might more most much must my myself
    need needs no nor not now of off on once one only or other ought our ours ourselves out
    over own please re really s same shall she should shouldn so some such t than that the
    their theirs them themselves then there these they this those through to too under until
    up us use used using ve very want wants was wasn way we were weren what when where whether
    which while who whom why will with won would wouldn you your yours yourself yourselves
    also anyone anything someone something"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
MAX_TERMS = 24  # a pasted paragraph is not a query: its first words are
MIN_PREFIX = 3  # letters a word needs before the fallback tries it as a prefix

_QUOTED = re.compile(r'"([^"]+)"')
# A word as the index's tokenizer (unicode61) sees it: letters and digits.
_WORD = re.compile(r"[^\W_]+")
# An identifier: word parts joined by . _ :: -> or / (also 0.1, __init__, os.path.join).
_IDENTIFIER = re.compile(r"[^\W_]+(?:(?:\.|_+|::|->|/)[^\W_]+)+")


def quote(text: str) -> str:
    """``text`` as one FTS5 string (a phrase when it has several words)."""
    return '"' + text.replace('"', '""') + '"'


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Query:
    """A parsed query; ``expression`` is its FTS5 MATCH string."""

    terms: tuple[str, ...]  # the words searched for, in order, function words out
    extras: tuple[str, ...] = ()  # phrases and words also searched for (see the module doc)
    phrases: tuple[str, ...] = ()  # "quoted" phrases: required

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases

    def expression(self, *, prefix: bool = False) -> str:
        """The FTS5 query: every required phrase, and any of the optional parts."""
        if prefix:
            long_enough = [term for term in self.terms if len(term) >= MIN_PREFIX]
            optional = [quote(term) + "*" for term in long_enough or self.terms]
        else:
            optional = [quote(part) for part in (*self.terms, *self.extras)]
        required = [quote(phrase) for phrase in self.phrases]
        if not optional:
            return " AND ".join(required)
        either = " OR ".join(optional)
        return " AND ".join([*required, f"({either})"]) if required else either

    def parts(self) -> tuple[str, ...]:
        """The optional words and phrases, each of which can make a section match."""
        return (*self.terms, *self.extras)

    def narrowed(self, keep: frozenset[str], required: tuple[str, ...] = ()) -> Query:
        """The same query with only the optional parts in ``keep``, and ``required`` parts
        added to its required phrases."""
        return Query(
            terms=tuple(t for t in self.terms if t in keep),
            extras=tuple(e for e in self.extras if e in keep),
            phrases=(*self.phrases, *required),
        )

    def words(self) -> frozenset[str]:
        """Every word searched for (to pick the part of a long text that matched)."""
        found = {*self.terms, *self.extras, *(p for phrase in self.phrases for p in phrase.split())}
        return frozenset(word for text in found for word in text.split())


def parse_query(text: str) -> Query:
    phrases = _unique([" ".join(_words(p)) for p in _QUOTED.findall(text) if _words(p)])
    rest = _QUOTED.sub(" ", text)
    words = _words(rest)
    content = [word for word in words if word not in STOPWORDS] or words
    terms = _unique(content)[:MAX_TERMS]
    extras: list[str] = []
    for identifier in _IDENTIFIER.findall(rest):
        parts = _words(identifier)
        if len(parts) > 1:
            extras.append(" ".join(parts))
    for first, second in itertools.pairwise(content):
        if first != second and first.isalpha() and second.isalpha():
            extras.append(first + second)
    for term in terms:
        extras.extend(alternatives(term))
    kept = set(terms)
    return Query(
        terms=terms,
        extras=tuple(extra for extra in _unique(extras) if extra not in kept)[:MAX_TERMS],
        phrases=phrases,
    )
