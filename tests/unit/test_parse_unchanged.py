"""Speed work never changes a record: every pinned input gives the record it gave before.

The digests in ``records_unchanged.json`` were taken with the code before the rewrite
(see ``record_digests.py``), per Python version; an input or a version without a pinned
digest is not compared.
"""

from __future__ import annotations

import json
import random
from email.policy import Compat32

import pytest

from airflow_provider_mail.mail import mime
from tests.unit.record_digests import GOLDEN, digest, input_key, inputs, version


def test_records_are_unchanged() -> None:
    pinned = json.loads(GOLDEN.read_text()).get(version())
    if pinned is None:
        pytest.skip(f"no digests were pinned for Python {version()}")
    compared = changed = 0
    for raw in inputs():
        expected = pinned.get(input_key(raw))
        if expected is None:
            continue
        compared += 1
        if digest(raw) != expected:
            changed += 1
    assert compared >= 800
    assert changed == 0


def test_plain_headers_are_written_as_compat32_folds_them() -> None:
    """The short cut for forwarded messages' headers gives exactly what compat32 gives."""
    generator = random.Random(5)
    alphabet = ' \t;,abcXYZ=?:"<>()\\/@.-_0123\x00\x0b\x0c\x1c\x1d\x1e\x1f\x7f'
    for _ in range(20_000):
        value = "".join(generator.choice(alphabet) for _ in range(generator.randrange(0, 80)))
        name = generator.choice(["Subject", "X-Long-Header-Name", "To"])
        assert folded(mime._FLATTEN_POLICY, name, value) == folded(mime._POLICY, name, value), value


def folded(policy: Compat32, name: str, value: str) -> object:
    """``policy.fold_binary(name, value)``, or the type of the error it raises."""
    try:
        return policy.fold_binary(name, value)
    except Exception as err:
        return type(err)


def test_folded_headers_are_written_as_compat32_folds_them() -> None:
    """The short cut for folded headers (Received, DKIM-Signature...) of forwarded messages."""
    generator = random.Random(2822)
    pieces = [
        "a",
        "Xy",
        "=?",
        ";",
        "\\",
        "(c)",
        ":",
        " ",
        "  ",
        "\t",
        "\r\n ",
        "\n\t",
        "\r\n\t ",
        "\r\n",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "by",
        "from",
        "X-A:",
        "\n x",
        "\n ",
        "é",
    ]
    shortcut = 0
    for _ in range(30_000):
        value = "".join(generator.choice(pieces) for _ in range(generator.randrange(0, 14)))
        name = generator.choice(["Received", "X-Long-Header-Name", "To"])
        shortcut += "\n" in value and mime._FOLDED_HEADER.fullmatch(value) is not None
        assert folded(mime._FLATTEN_POLICY, name, value) == folded(mime._POLICY, name, value)
    assert shortcut > 300  # the short cut itself was exercised
