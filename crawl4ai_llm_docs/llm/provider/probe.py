"""Does the server queue? ``check`` sends 2, then 4 tiny requests at once and compares.

A server that runs every request at once answers a wave of k requests in about the time of one.
One that runs N at a time and queues the rest (llama.cpp, Ollama, LM Studio, one vLLM replica)
needs about ceil(k / N) times as long, so, the answers come in a staircase: N after about
one request's time, N more after two, and so on. A wave gets a generous deadline (queued
requests take k times as long); a request unanswered by then counts as queued.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
import trio

WAVES = (2, 4)
# The wave must take 1.5x as long as one request, and 0.25 s more, to count as queueing:
# on a busy machine a server answering in milliseconds jitters by a tenth of a second, while
# even a 5-token answer from a queueing LLM server takes a few tenths.
_QUEUE_RATIO = 1.5
_QUEUE_SLACK_S = 0.25


class Wave(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    latencies_s: tuple[float, ...]  # of the requests answered, in the order they ended
    duration_s: float  # until the last answer (the deadline if some never came)
    unanswered: int  # no usable answer within the deadline


class QueueProbe(msgspec.Struct, frozen=True, kw_only=True):
    single_s: float  # one request alone
    waves: tuple[Wave, ...]
    queues: bool
    slots: int  # requests the server ran at once (the wave size when it does not queue)

    def ratios(self) -> list[tuple[int, float]]:
        """(wave size, the wave's time / one request's time)."""
        base = _base(self)
        return [(wave.size, wave.duration_s / base) for wave in self.waves]

    def describe(self) -> str:
        seen = ", ".join(f"{size} at once took {ratio:.1f}x" for size, ratio in self.ratios())
        if not self.queues:
            return f"none seen: {seen} as long as one request"
        plural = "request" if self.slots == 1 else "requests"
        return (
            f"yes, the server runs about {self.slots} {plural} at a time and queues the rest: "
            f"{seen} as long as one"
        )


def _base(probe: QueueProbe) -> float:
    fastest = [probe.single_s, *(min(w.latencies_s) for w in probe.waves if w.latencies_s)]
    return max(min(fastest), 1e-6)


async def probe_queueing(
    send_one: Callable[[], Awaitable[bool]], *, single_s: float, timeout_s: float
) -> QueueProbe:
    """Send each wave of ``WAVES`` at once with ``send_one`` (True: answered).

    A wave may take ``max(timeout_s, 1.5 x size x single_s + 5 s)``: a queueing server needs
    about ``size`` times one request's time.
    """
    waves = []
    for size in WAVES:
        waves.append(await _wave(send_one, size, max(timeout_s, 1.5 * size * single_s + 5.0)))
    return analyse(single_s, tuple(waves))


async def _wave(send_one: Callable[[], Awaitable[bool]], size: int, deadline_s: float) -> Wave:
    start = trio.current_time()
    latencies: list[float] = []

    async def one() -> None:
        if await send_one():
            latencies.append(trio.current_time() - start)

    with trio.move_on_after(deadline_s):
        async with trio.open_nursery() as nursery:
            for _ in range(size):
                nursery.start_soon(one)
    unanswered = size - len(latencies)
    duration = deadline_s if unanswered or not latencies else max(latencies)
    return Wave(size=size, latencies_s=tuple(latencies), duration_s=duration, unanswered=unanswered)


def analyse(single_s: float, waves: tuple[Wave, ...]) -> QueueProbe:
    """Whether the largest wave shows a queue, and how many requests the server ran at once.

    The server's slots are the requests of that wave answered in about one request's time:
    the others waited for them (a staircase: N answers after one request's time, N more after
    two, ...).
    """
    size = max((w.size for w in waves), default=1)
    probe = QueueProbe(single_s=single_s, waves=waves, queues=False, slots=size)
    if not waves:
        return probe
    base = _base(probe)
    largest = max(waves, key=lambda w: w.size)
    longer = largest.duration_s > max(_QUEUE_RATIO * base, base + _QUEUE_SLACK_S)
    if not longer and not largest.unanswered:
        return probe
    # Relative only: with answers of a tenth of a second, 50 ms of slack is a whole step.
    fast = sum(1 for latency in largest.latencies_s if latency <= _QUEUE_RATIO * base)
    return msgspec.structs.replace(probe, queues=True, slots=max(1, min(size - 1, fast)))
