"""A trigger that measures the event loop it runs in: the lag of the real triggerer.

It sleeps :data:`INTERVAL` seconds again and again and appends, per wake-up, the Unix
time and how much later than asked it woke (ms) to a file; a loop blocked by a trigger
(or starved of the GIL by the triggerer's threads) shows as oversleep. It never fires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

INTERVAL = 0.05


class LagProbeTrigger(BaseTrigger):
    """Write ``<unix time> <oversleep ms>`` lines to ``path`` every :data:`INTERVAL`."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"path": self.path}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        with open(self.path, "a", buffering=1) as out:
            while True:
                started = time.monotonic()
                await asyncio.sleep(INTERVAL)
                late = time.monotonic() - started - INTERVAL
                out.write(f"{time.time():.3f} {late * 1000:.2f}\n")
        yield TriggerEvent(None)  # pragma: no cover - never reached: it only measures
