"""Fault injection: kill this process with SIGKILL at a named point of a hand-over."""

from __future__ import annotations

import os
import signal
from typing import Any

#: Points of a hand-over where a process can be killed: before the messages are read,
#: after they are read but not marked, after they are marked but the result not stored.
HOOK_POINTS = ("before_fetch", "after_fetch", "after_mark")


def die() -> None:
    """SIGKILL this process: no clean-up, no finally, as an OOM kill would."""
    os.kill(os.getpid(), signal.SIGKILL)


def inject_crash(hook: Any, point: str | None) -> Any:
    """Make ``hook`` die at ``point`` (one of :data:`HOOK_POINTS`); ``None``: unchanged."""
    if point not in HOOK_POINTS:
        return hook
    fetch, mark_seen = hook.fetch, hook.mark_seen

    def crashing_fetch(claim: Any, sink: Any) -> Any:
        if point == "before_fetch":
            die()
        records = fetch(claim, sink)
        if point == "after_fetch":
            die()
        return records

    def crashing_mark_seen(claim: Any) -> None:
        mark_seen(claim)
        if point == "after_mark":
            die()

    hook.fetch, hook.mark_seen = crashing_fetch, crashing_mark_seen
    return hook
