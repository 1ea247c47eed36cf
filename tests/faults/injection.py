"""Fault injection: kill this process with SIGKILL at a named point of a hand-over."""

from __future__ import annotations

import os
import signal
from typing import Any

#: Points of a hand-over where a process can be killed: after the messages about to be
#: taken were reserved in the ledger but before the server marked them, before they are
#: read, after they are read, and after they are marked seen (with ``unseen_only`` taking
#: them marks them, before the read; otherwise ``mark_seen`` does, after it).
HOOK_POINTS = ("after_reserve", "before_fetch", "after_fetch", "after_mark")


def die() -> None:
    """SIGKILL this process: no clean-up, no finally, as an OOM kill would."""
    os.kill(os.getpid(), signal.SIGKILL)


def inject_crash(hook: Any, point: str | None) -> Any:
    """Make ``hook`` die at ``point`` (one of :data:`HOOK_POINTS`); ``None``: unchanged."""
    if point not in HOOK_POINTS:
        return hook
    claim, fetch, mark_seen = hook.claim, hook.fetch, hook.mark_seen

    def crashing_claim(taking: Any, **kwargs: Any) -> Any:
        before_take = kwargs.get("before_take")
        if point == "after_reserve" and before_take is not None:

            def reserve_then_die(reserved: Any) -> None:
                before_take(reserved)
                die()

            kwargs["before_take"] = reserve_then_die
        owned = claim(taking, **kwargs)
        if point == "after_mark" and owned:
            die()
        return owned

    def crashing_fetch(taken: Any, sink: Any) -> Any:
        if point == "before_fetch":
            die()
        records = fetch(taken, sink)
        if point == "after_fetch":
            die()
        return records

    def crashing_mark_seen(taken: Any) -> None:
        mark_seen(taken)
        if point == "after_mark":
            die()

    hook.claim, hook.fetch, hook.mark_seen = crashing_claim, crashing_fetch, crashing_mark_seen
    return hook
