"""The fast address split of address_fields.py gives what ``email.utils.getaddresses`` gives."""

from __future__ import annotations

import random
from email.utils import getaddresses

from airflow_provider_mail.mail.address_fields import split_addresses

PIECES = [
    "jane@example.com", "a.b@c-d.example.org", "x+y@z", "O'Brien", "Jane", "Doe", "Jane Doe",
    '"Doe, Jane"', '"a@b"', '"<x>"', '" spaced "', '""', "<j@example.com>", "<a.b@c.d>",
    " ", "  ", "\t", ",", ", ", "<", ">", "@", ".", '"', "\\", "(c)", "[1.2.3.4]", ":", ";",
    "=?utf-8?q?Ren=C3=A9e?=", "=?utf-8?b?w6k=?=", "é", "a..b@c", "@x", "x@", "group:", "\r\n ",
]  # fmt: skip


def random_header(generator: random.Random) -> str:
    return "".join(generator.choice(PIECES) for _ in range(generator.randrange(0, 9)))


def test_plain_lists_split_like_getaddresses() -> None:
    generator = random.Random(16)
    for _ in range(30_000):
        texts = [random_header(generator) for _ in range(generator.randrange(1, 3))]
        assert split_addresses(texts) == getaddresses(texts), texts


def plain_entry(generator: random.Random) -> str:
    """An entry the regular expression handles, often with a flaw that it must refuse."""
    space = generator.choice(["", " ", "  ", "\t"])
    local = generator.choice(["jane", "a.b", "x+y", "o'b", "a..b", ".a", "=?x?="])
    domain = generator.choice(["example.com", "c-d.org", "z", "a..b", "x.", "[1.2.3.4]"])
    address = f"{local}@{domain}"
    name = generator.choice(
        ["Jane", "Jane Doe", "Jane  Doe", "J. Doe", '"Doe, Jane"', '"a\\"b"', '""', "Ré", ""]
    )
    form = generator.randrange(3)
    if form == 0:
        return f"{space}{address}{space}"
    if form == 1:
        return f"{space}{name}{space}<{address}>{space}"
    return f"{name}<{address}>"


def test_plain_entries_split_like_getaddresses() -> None:
    generator = random.Random(61)
    for _ in range(20_000):
        entries = [plain_entry(generator) for _ in range(generator.randrange(1, 4))]
        texts = [generator.choice([",", ", ", ",,"]).join(entries)]
        if generator.random() < 0.1:
            texts[0] += ","
        assert split_addresses(texts) == getaddresses(texts), texts


def test_an_example() -> None:
    texts = ['Jane Doe <jane@example.com>, "Doe, John" <john@example.com>, bob@example.net']
    assert split_addresses(texts) == [
        ("Jane Doe", "jane@example.com"),
        ("Doe, John", "john@example.com"),
        ("", "bob@example.net"),
    ]
