"""One connection lookup per connection id in a triggerer, shared by all its triggers.

In a triggerer every lookup of a connection is a round of requests from the trigger
runner to its supervisor (Airflow 3.3: the URI, then masking the password and the extras),
and the supervisor serves about one request per loop iteration. A thousand deferred
sensors that each looked up their connection kept the triggerer busy for many minutes
before the last of them polled (docs/benchmarks.md, section 5). Here the first trigger
of a connection looks it up; every other trigger of the same triggerer reuses it for
:data:`TTL_SECONDS`, and triggers that start at the same time wait for the one lookup.

Secrets stay masked: the first lookup registers the password and the extras with the
secrets masker of this process and of the supervisor, and a reused connection is that
same object. An authentication failure drops the entry at once
(:func:`forget_connection`), so a rotated password is read by the next poll, not after
the TTL. OAuth 2.0 tokens are not kept here: the connection holds the client's
credentials, and tokens are fetched and renewed by :mod:`..hooks.oauth2` as before.

The cache belongs to the running event loop: one per trigger runner, which is one per
triggerer process (and one per ``asyncio.run`` in tests, which therefore never see each
other's connections).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.compat import aget_connection

#: How long a looked-up connection is reused. A changed connection (other than a
#: password that stops working, which is picked up at once) reaches waiting triggers
#: within this time.
TTL_SECONDS = 300.0


@dataclass
class ConnectionCache:
    """Connections by id, each until its TTL ran out; concurrent misses share one lookup."""

    lookup: Callable[[str], Awaitable[Any]]
    ttl: float = TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    lookups: int = 0  # how many times ``lookup`` ran (for tests and benchmarks)
    _entries: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def cached(self, conn_id: str) -> Any:
        """The connection if it is cached and fresh, else ``None``."""
        entry = self._entries.get(conn_id)
        if entry is None or self.clock() >= entry[0]:
            return None
        return entry[1]

    async def get(self, conn_id: str) -> Any:
        """The connection: cached, or looked up once for every trigger asking meanwhile."""
        connection = self.cached(conn_id)
        if connection is not None:
            return connection
        async with self._locks.setdefault(conn_id, asyncio.Lock()):
            connection = self.cached(conn_id)  # looked up while this one waited
            if connection is None:
                self.lookups += 1
                connection = await self.lookup(conn_id)  # errors are not cached
                self._entries[conn_id] = (self.clock() + self.ttl, connection)
            return connection

    def forget(self, conn_id: str) -> None:
        """Drop ``conn_id``: the next :meth:`get` looks it up again."""
        self._entries.pop(conn_id, None)


_CACHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionCache] = (
    weakref.WeakKeyDictionary()
)


def connection_cache() -> ConnectionCache:
    """The cache of the running event loop (the triggerer's)."""
    return _CACHES.setdefault(asyncio.get_running_loop(), ConnectionCache(aget_connection))


async def cached_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, looked up at most once per :data:`TTL_SECONDS`."""
    return await connection_cache().get(conn_id)


def forget_connection(conn_id: str) -> None:
    """After an authentication failure: look ``conn_id`` up again next time."""
    connection_cache().forget(conn_id)
