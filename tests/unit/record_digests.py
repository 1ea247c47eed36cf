"""Digests of the records ``build_record`` gives for a fixed set of inputs.

Speed work on the record builder (``mail/parse.py`` and the modules it uses) must not
change a single record. This module builds the inputs (the corpus, mutations of it,
CPython's own email test messages, realistic mail) and one digest per input: the record
and every attachment the sink received (name, type, bytes). ``records_unchanged.json``
holds the digests the code gave before the rewrite, per Python minor version (the email
library itself differs between versions).

Regenerate only when a record is meant to change, and say so in the commit::

    python -m tests.unit.record_digests > tests/unit/records_unchanged.json

(merging the output for each Python version).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_provider_mail.mail.parse import build_record

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
GOLDEN = Path(__file__).resolve().parent / "records_unchanged.json"


def cpython_email_data() -> Path:
    """CPython's email test messages (``test/test_email/data``) of this interpreter."""
    return Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"


class RecordingSink:
    """Keeps what each save received, as digests; returns a fake location."""

    def __init__(self) -> None:
        self.saves: list[list[Any]] = []

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        self.saves.append(
            [message_key, filename, content_type, len(data), hashlib.sha256(data).hexdigest()]
        )
        return f"memory://{message_key}/{len(self.saves)}"


def corpus_files() -> list[str]:
    return sorted(path.name for path in CORPUS.glob("*.eml"))


def mutations(seed: int, count: int) -> list[bytes]:
    """Random bytes and corpus messages with random damage (deterministic per seed)."""
    generator = random.Random(seed)
    sources = [(CORPUS / name).read_bytes() for name in corpus_files()]
    junk = [b"\r\n", b"\n", b"--", b"=?", b"?=", b"\x00", b"\xff", b";", b'"', b"\\", b"=", b":"]
    samples = [generator.randbytes(generator.randrange(0, 400)) for _ in range(count // 4)]
    for _ in range(count - len(samples)):
        data = bytearray(generator.choice(sources) or b"Subject: x\r\n\r\nbody")
        for _ in range(generator.randrange(1, 12)):
            position = generator.randrange(len(data) + 1)
            action = generator.randrange(4)
            if action == 0:
                data[position:position] = generator.choice(junk)
            elif action == 1:
                del data[position : position + generator.randrange(1, 40)]
            elif action == 2 and data:
                data[min(position, len(data) - 1)] = generator.randrange(256)
            else:
                data[position:position] = data[: generator.randrange(1, 80)]
        samples.append(bytes(data))
    return samples


def inputs() -> Iterator[bytes]:
    """Every input whose record is pinned."""
    for name in corpus_files():
        yield (CORPUS / name).read_bytes()
    yield from mutations(seed=20240501, count=400)
    yield from mutations(seed=7, count=400)
    data = cpython_email_data()
    if data.is_dir():
        for path in sorted(data.glob("msg_*.txt")):
            yield path.read_bytes()


def digest(raw: bytes) -> str:
    """The digest of ``raw``'s record, under three sets of ids."""
    results = []
    for ids in ({"uid": 42, "uidvalidity": 7}, {"uidl": "u-1"}, {}):
        sink = RecordingSink()
        record = build_record(raw, folder="INBOX", attachments=sink, **ids)
        # Added after the digests were pinned: compared only when something was cut.
        if record.get("truncated") == {}:
            del record["truncated"]
        for field in ("in_reply_to", "references", "automatic"):  # added later as well
            del record[field]
        results.append([record, sink.saves])
    text = json.dumps(results, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def input_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:24]


def current_digests() -> dict[str, str]:
    return {input_key(raw): digest(raw) for raw in inputs()}


def version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


if __name__ == "__main__":
    existing = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    existing[version()] = current_digests()
    print(json.dumps(existing, indent=0, sort_keys=True))
