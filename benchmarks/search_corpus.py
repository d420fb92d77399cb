"""A made-up docs set for ``bench_search.py``: pages of an imaginary library whose words
follow Zipf's law, English's commonest words on top as in any English text, then made-up
words, most of them rare; headings, paragraphs, code with identifiers. Seeded: the same
pages every time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from crawl4ai_llm_docs.models import Document

# The most frequent words of English text, in order (Fry's first hundred): as in any English
# text, they make the top of the made-up pages' vocabulary. (Not the search's stopword list:
# it drops some of these, not all; "time", "number" and "water" stay content words.)
_ENGLISH_TOP_TEXT = """the of and a to in is you that it he was for on are as with his they I at be
this have from or one had by word but not what all were we when your can said there use an
each which she do how their if will up other about out many then them these so some her
would make like him into time has look two more write go see number no way could people my
than first water been call who oil its now find long down day did get come made may part"""
ENGLISH_TOP = _ENGLISH_TOP_TEXT.split()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """English's commonest words first (they take the top ranks), then made-up words."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    made_up: set[str] = set()
    while len(made_up) < size - len(ENGLISH_TOP):
        made_up.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 11))))
    return [word.lower() for word in ENGLISH_TOP] + sorted(made_up - set(ENGLISH_TOP))


class Generator:
    """Pages of a made-up library: Zipf-distributed words (English's commonest on top), so a
    few are everywhere and most are rare, as in real documentation."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(self.rng, 20_000)
        weights = [1 / (rank + 1) for rank in range(len(self.words))]
        self.cumulative = list(_accumulate(weights))

    def word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.cumulative)[0]

    def sentence(self, low: int, high: int) -> str:
        return " ".join(self.word() for _ in range(self.rng.randint(low, high)))

    def page(self, number: int, revision: int = 0) -> Document:
        rng = self.rng
        module = f"{self.word()}{self.word()}"
        parts = [f"# {module} — {self.sentence(2, 5)}", self.sentence(20, 60) + "."]
        for _ in range(rng.randint(3, 9)):
            parts.append(f"{'#' * rng.choice((2, 2, 3))} {self.sentence(1, 4).title()}")
            for _ in range(rng.randint(1, 4)):
                parts.append(self.sentence(30, 110) + ".")
            if rng.random() < 0.4:
                name = f"{module}.{self.word()}_{self.word()}"
                parts.append(f"```python\nresult = {name}({self.word()}={rng.randint(0, 99)})\n```")
        if revision:
            parts.append(f"Revised {revision}: {self.sentence(10, 20)}.")
        return Document(
            index=number,
            url=f"https://docs.generated.example/api/{module}-{number}.html",
            title=f"{module} — {self.sentence(2, 5)}",
            markdown="\n\n".join(parts),
            fetched_at="2026-12-07T10:00:00Z",
        )


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def generated(pages: int, seed: int = 7) -> list[Document]:
    generator = Generator(seed)
    return [generator.page(n) for n in range(pages)]
