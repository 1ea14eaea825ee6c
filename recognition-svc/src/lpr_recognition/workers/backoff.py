"""Retry timing and the loop every background worker runs in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

_logger = logging.getLogger(__name__)


def retry_delay(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``base_s``, capped, jittered.

    The jitter (up to a quarter less) keeps many reads that failed together from all
    coming back in the same instant.
    """
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return float(delay * random.uniform(0.75, 1.0))


async def run_forever(
    name: str,
    step: Callable[[], Awaitable[int]],
    *,
    poll_s: float,
    wakeup: asyncio.Event | None = None,
) -> None:
    """Call ``step`` again and again; when it found no work, wait ``poll_s`` or a wake-up.

    An unexpected error is logged and the loop goes on: a worker must outlive a database
    restart or a bug in one message.
    """
    while True:
        try:
            done = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            _logger.exception("worker %s failed; retrying", name)
            done = 0
        if done:
            continue
        if wakeup is None:
            await asyncio.sleep(poll_s)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=poll_s)
        wakeup.clear()
