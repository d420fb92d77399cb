"""What every check returns, and the text normalisations the checks share."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Check:
    total: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str, snippet: str) -> None:
        self.failures.append(f"{kind}: {snippet}")

    @property
    def failed(self) -> int:
        return self.total - self.ok


def _snip(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def normalise_code(text: str) -> str:
    text = (
        text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ").translate(_ZERO_WIDTH)
    )
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _collapse(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").translate(_ZERO_WIDTH).split())


def _counts_up(text: str) -> bool:
    """1 2 3 ... (line numbers), one a line."""
    numbers = text.split()
    if len(numbers) < 2 or not all(n.isdigit() for n in numbers):
        return False
    values = [int(n) for n in numbers]
    return all(b == a + 1 for a, b in itertools.pairwise(values))
