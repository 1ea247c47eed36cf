"""The triggerer's connection cache: one lookup per connection id, TTL, invalidation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_mail.triggers.connection_cache import ConnectionCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Lookups:
    """A connection store whose answers change (a rotated password) and may fail."""

    def __init__(self) -> None:
        self.password = "one"
        self.missing = False

    async def __call__(self, conn_id: str) -> Any:
        await asyncio.sleep(0.01)  # concurrent triggers overlap with a lookup in flight
        if self.missing:
            raise LookupError(f"no connection {conn_id}")
        return {"conn_id": conn_id, "password": self.password}


def test_concurrent_triggers_share_one_lookup_per_connection() -> None:
    async def main() -> tuple[list[Any], int]:
        cache = ConnectionCache(Lookups())
        found = await asyncio.gather(*(cache.get(f"c{n % 2}") for n in range(100)))
        return found, cache.lookups

    found, lookups = asyncio.run(main())
    assert lookups == 2
    assert {conn["conn_id"] for conn in found} == {"c0", "c1"}


def test_an_entry_expires_after_its_ttl() -> None:
    async def main() -> list[Any]:
        store, clock = Lookups(), Clock()
        cache = ConnectionCache(store, ttl=300, clock=clock)
        first = await cache.get("c")
        store.password = "two"
        clock.now = 299.0
        cached = await cache.get("c")
        clock.now = 300.0
        fresh = await cache.get("c")
        return [first["password"], cached["password"], fresh["password"], cache.lookups]

    assert asyncio.run(main()) == ["one", "one", "two", 2]


def test_forget_reads_a_rotated_password_at_once() -> None:
    async def main() -> list[Any]:
        store = Lookups()
        cache = ConnectionCache(store, clock=Clock())
        await cache.get("c")
        store.password = "two"
        cache.forget("c")  # the trigger saw an authentication failure
        return [(await cache.get("c"))["password"], cache.lookups]

    assert asyncio.run(main()) == ["two", 2]


def test_a_failed_lookup_is_not_cached() -> None:
    async def main() -> int:
        store = Lookups()
        cache = ConnectionCache(store)
        store.missing = True
        with pytest.raises(LookupError):
            await cache.get("c")
        store.missing = False
        await cache.get("c")
        return cache.lookups

    assert asyncio.run(main()) == 2
