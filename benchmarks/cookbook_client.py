"""A fixed-pace peer: the loop of OpenAI's cookbook ``api_request_parallel_processor.py``.

Its throttle, restated (not copied): a request budget that refills at the configured
``max_requests_per_minute / 60`` per second up to one minute's worth, a request sent
whenever one unit is available (no concurrency limit), the main loop sleeping 1 ms between
checks, and after any rate-limit error every new send waits until 15 s have passed since
it; failed requests are retried up to 5 attempts. It never reads rate-limit headers.

``--start full`` is the published behaviour (the budget starts with a whole minute's
worth, so a short job is sent at once); ``--start empty`` starts with one request, i.e. a
strict fixed pace from the configured RPM.

    python benchmarks/cookbook_client.py BASE_URL --rpm 60 --requests 28 [--start empty]

Prints one JSON line: requests sent, 429s, successes, failures, first/last send (unix s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass

import httpx

PAUSE_AFTER_RATE_LIMIT_S = 15.0
LOOP_SLEEP_S = 0.001
MAX_ATTEMPTS = 5


@dataclass
class Tracker:
    sent: int = 0
    rate_limited: int = 0
    succeeded: int = 0
    failed: int = 0
    in_progress: int = 0
    last_rate_limit_at: float = 0.0
    first_send_at: float = 0.0
    last_send_at: float = 0.0


async def process(base_url: str, rpm: float, count: int, start: str) -> Tracker:
    tracker = Tracker()
    todo: list[tuple[int, int]] = [(index, MAX_ATTEMPTS) for index in range(count)]
    retries: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    capacity = rpm if start == "full" else 1.0
    updated = time.time()
    pending: tuple[int, int] | None = None
    tasks: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:

        async def call(index: int, attempts_left: int) -> None:
            body = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Clean this documentation page."},
                    {"role": "user", "content": f"<document>\n# Page {index}\n</document>"},
                ],
            }
            try:
                response = await client.post(
                    f"{base_url}/chat/completions",
                    json=body,
                    headers={"Authorization": "Bearer bench-key"},
                )
                ok = response.status_code == 200
                if response.status_code == 429 and "Rate limit" in response.text:
                    tracker.rate_limited += 1
                    tracker.last_rate_limit_at = time.time()
            except httpx.HTTPError:
                ok = False
            if ok:
                tracker.succeeded += 1
                tracker.in_progress -= 1
            elif attempts_left > 1:
                retries.put_nowait((index, attempts_left - 1))
            else:
                tracker.failed += 1
                tracker.in_progress -= 1

        tracker.in_progress = count
        while True:
            if pending is None:
                if not retries.empty():
                    pending = retries.get_nowait()
                elif todo:
                    pending = todo.pop(0)
            now = time.time()
            capacity = min(capacity + rpm * (now - updated) / 60.0, rpm)
            updated = now
            if pending is not None and capacity >= 1:
                capacity -= 1
                index, attempts = pending
                pending = None
                tracker.sent += 1
                tracker.first_send_at = tracker.first_send_at or now
                tracker.last_send_at = now
                task = asyncio.create_task(call(index, attempts))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tracker.in_progress == 0:
                break
            await asyncio.sleep(LOOP_SLEEP_S)
            since = time.time() - tracker.last_rate_limit_at
            if since < PAUSE_AFTER_RATE_LIMIT_S:
                await asyncio.sleep(PAUSE_AFTER_RATE_LIMIT_S - since)
    return tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--rpm", type=float, required=True, help="max_requests_per_minute")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--start", choices=("full", "empty"), default="full")
    args = parser.parse_args()
    tracker = asyncio.run(process(args.base_url, args.rpm, args.requests, args.start))
    print(json.dumps(asdict(tracker)))


if __name__ == "__main__":
    main()
