"""Compare two ways of parsing a message into the record: ``compat32`` vs ``email.policy.default``.

Run from the repository root::

    python -m benchmarks.parse            # 200 realistic messages + the nasty corpus
    python -m benchmarks.parse --messages 500 --repeat 7
    python -m benchmarks.parse --memory-mb 50   # also: peak memory for one 50 MB message
    python -m benchmarks.parse --corpus --compare-with /path/to/old/parse.py

``--corpus``: per message of CPython's own email test messages and ``tests/corpus``, the
time of ``build_record`` against a bare ``email.message_from_bytes`` (``compat32``), and the
median of both (issue 16's target: at most 1.5x); ``--compare-with`` times another version
of ``parse.py`` (e.g. ``git show main:airflow_provider_mail/mail/parse.py > old.py``) in
the same run.

``compat32`` is what :func:`airflow_provider_mail.mail.parse.build_record` uses: it parses
with the legacy policy and decodes only the headers the record needs. ``policy.default``
is the modern API (header objects, ``get_body``, ``get_content``), written here as the
straightforward alternative. Both write attachments to a sink that only counts bytes, so
the numbers measure parsing, not the disk. The ratio printed is measured in this run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email
import gc
import importlib.util
import statistics
import sysconfig
import time
import tracemalloc
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from airflow_provider_mail.mail.html_text import html_to_text
from airflow_provider_mail.mail.parse import build_record

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
Parser = Callable[[bytes], dict[str, Any]]


class CountingSink:
    """An attachment sink that keeps nothing: the benchmark measures parsing only."""

    def __init__(self) -> None:
        self.saved_bytes = 0

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        self.saved_bytes += len(data)
        return f"memory://{message_key}/{filename}"


def realistic_messages(count: int) -> list[bytes]:
    """Messages like an info@ inbox receives: names, UTF-8, text + HTML, a small PDF."""
    names = ["Jane Doe", "Renée Müller", "Doe, John", "李小龙", "O'Brien"]
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 80 + b"\n%%EOF\n"
    messages = []
    for number in range(count):
        message = EmailMessage()
        name = names[number % len(names)]
        message["From"] = f'"{name}" <sender{number}@example.com>'
        message["To"] = "info@example.org, Sales <sales@example.org>"
        message["Cc"] = f"Bob <bob{number}@example.net>"
        message["Subject"] = f"Demande de devis n°{number} - café ☕"
        message["Date"] = "Wed, 01 May 2024 09:30:00 +0200"
        message["Message-ID"] = f"<bench-{number}@example.com>"
        text = f"Bonjour,\n\nmerci de m'envoyer un devis pour {number} unités.\n\n{name}\n" * 5
        message.set_content(text)
        message.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
        if number % 2 == 0:
            message.add_attachment(
                pdf, maintype="application", subtype="pdf", filename=f"devis-{number}.pdf"
            )
        messages.append(message.as_bytes())
    return messages


def compat32_record(raw: bytes) -> dict[str, Any]:
    """The provider's parser."""
    return build_record(raw, folder="INBOX", attachments=CountingSink())


def default_policy_record(raw: bytes) -> dict[str, Any]:
    """The same record built the modern way, with ``email.policy.default``."""
    message = BytesParser(policy=policy.default).parsebytes(raw)

    def header(name: str) -> str:
        value = message[name]
        return "" if value is None else str(value)

    def addresses(name: str) -> str:
        value = message[name]
        if value is None:
            return ""
        return ", ".join(str(address) for address in value.addresses)

    date = message["date"]
    moment = getattr(date, "datetime", None) if date is not None else None
    plain = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    text = plain.get_content() if plain is not None else ""
    html = html_part.get_content() if html_part is not None else None
    sink = CountingSink()
    attachments = []
    for part in message.walk():
        if part.is_multipart() or part is plain or part is html_part:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        path = sink.save("key", filename, part.get_content_type(), data)
        attachments.append(
            {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(data),
                "path": path,
            }
        )
    return {
        "message_id": header("message-id") or None,
        "from": addresses("from"),
        "to": addresses("to"),
        "cc": addresses("cc"),
        "bcc": addresses("bcc"),
        "reply_to": addresses("reply-to"),
        "subject": header("subject"),
        "date": moment.isoformat() if moment is not None else None,
        "text": text.replace("\r\n", "\n") if text.strip() or not html else html_to_text(html),
        "html": html,
        "attachments": attachments,
        "size": len(raw),
    }


def time_per_message(parse: Parser, messages: list[bytes], repeat: int) -> float:
    """Best-of-``repeat`` milliseconds per message (the best run has the least noise)."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for raw in messages:
            with contextlib.suppress(Exception):  # counted separately by failures()
                parse(raw)
        runs.append((time.perf_counter() - start) * 1000 / len(messages))
    return min(runs)


def failures(parse: Parser, messages: dict[str, bytes]) -> dict[str, str]:
    """Messages the parser raised on, with the error."""
    failed = {}
    for name, raw in messages.items():
        try:
            parse(raw)
        except Exception as err:
            failed[name] = f"{type(err).__name__}: {err}"[:100]
    return failed


def disagreements(messages: list[bytes]) -> list[str]:
    """Record fields where the two parsers disagree on realistic mail."""
    fields = ["message_id", "from", "to", "cc", "subject", "date", "text", "html"]
    found = set()
    for raw in messages:
        ours, theirs = compat32_record(raw), default_policy_record(raw)
        for field in fields:
            if ours[field] != theirs[field]:
                found.add(f"{field}: {ours[field]!r:.60} vs {theirs[field]!r:.60}")
        if [a["filename"] for a in ours["attachments"]] != [
            a["filename"] for a in theirs["attachments"]
        ]:
            found.add("attachments")
    return sorted(found)


def big_message(megabytes: int) -> bytes:
    """One message with a base64 attachment of about ``megabytes`` MB on the wire."""
    payload = bytes(range(256)) * (megabytes * 1024 * 3 // 4 * 4)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b'--b\r\nContent-Type: application/zip; name="big.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )


def peak_memory_mb(parse: Parser, raw: bytes) -> float:
    """Peak Python memory allocated while parsing ``raw``, beyond ``raw`` itself."""
    gc.collect()
    tracemalloc.start()
    try:
        parse(raw)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def corpus_messages() -> dict[str, bytes]:
    """CPython's email test messages (of this interpreter) and ``tests/corpus``."""
    data = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    paths = sorted(data.glob("msg_*.txt")) + sorted(CORPUS.glob("*.eml"))
    return {path.name: path.read_bytes() for path in paths}


def cpu_per_message(parse: Callable[[bytes], object], raw: bytes, repeat: int) -> float:
    """Best-of-``repeat`` CPU seconds of one call (each sample 20 calls)."""
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(20):
            parse(raw)
        samples.append((time.process_time() - started) / 20)
    return min(samples)


BARE = "`email.message_from_bytes` (compat32)"


def corpus_table(repeat: int, compare_with: str | None) -> None:
    """``build_record`` vs a bare compat32 parse, per message, medians and ratios."""
    contenders: dict[str, Callable[[bytes], object]] = {
        BARE: email.message_from_bytes,
        "`build_record` (this checkout)": compat32_record,
    }
    if compare_with:
        spec = importlib.util.spec_from_file_location("compared_parse", compare_with)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        contenders[f"`build_record` ({compare_with})"] = lambda raw: module.build_record(
            raw, folder="INBOX", attachments=CountingSink()
        )
    messages = corpus_messages()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for raw in messages.values():
        for name, parse in contenders.items():  # side by side, message by message
            times[name].append(cpu_per_message(parse, raw, repeat))
    print(
        f"\n### build_record on {len(messages)} messages (CPython's email test data and "
        f"tests/corpus), CPU per message, best of {repeat}\n"
    )
    print("| messages | parser | median (µs) | x bare parse (medians) | median of ratios |")
    print("|---|---|---:|---:|---:|")
    nasty = [name.endswith(".eml") for name in messages]
    for label, chosen in (
        ("all", [True] * len(messages)),
        ("CPython test_email", [not flag for flag in nasty]),
        ("tests/corpus (nasty)", nasty),
    ):
        bare = [t for t, keep in zip(times[BARE], chosen, strict=True) if keep]
        for name, every in times.items():
            values = [t for t, keep in zip(every, chosen, strict=True) if keep]
            ratios = [value / base for value, base in zip(values, bare, strict=True)]
            print(
                f"| {label} ({len(values)}) | {name} | {statistics.median(values) * 1e6:.0f} | "
                f"{statistics.median(values) / statistics.median(bare):.2f} | "
                f"{statistics.median(ratios):.2f} |"
            )


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--messages", type=int, default=200)
    arguments.add_argument("--repeat", type=int, default=5)
    arguments.add_argument("--memory-mb", type=int, default=0, help="size of a big message")
    arguments.add_argument("--corpus", action="store_true", help="only the corpus table")
    arguments.add_argument("--compare-with", help="another parse.py to time side by side")
    options = arguments.parse_args()
    if options.corpus:
        corpus_table(options.repeat, options.compare_with)
        return

    realistic = realistic_messages(options.messages)
    nasty = {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))}
    print(
        f"{len(realistic)} realistic messages (avg {statistics.mean(map(len, realistic)):.0f} "
        f"bytes), {len(nasty)} nasty corpus messages, best of {options.repeat} runs\n"
    )
    print(f"{'parser':<16}{'realistic ms/msg':>18}{'nasty ms/msg':>15}{'nasty failures':>16}")
    results = {}
    for label, parse in (("compat32", compat32_record), ("policy.default", default_policy_record)):
        realistic_ms = time_per_message(parse, realistic, options.repeat)
        nasty_ms = time_per_message(parse, list(nasty.values()), options.repeat)
        failed = failures(parse, nasty)
        results[label] = (realistic_ms, nasty_ms, failed)
        print(f"{label:<16}{realistic_ms:>18.3f}{nasty_ms:>15.3f}{len(failed):>16}")
    ratio = results["policy.default"][0] / results["compat32"][0]
    nasty_ratio = results["policy.default"][1] / results["compat32"][1]
    print(
        f"\npolicy.default / compat32: {ratio:.2f}x on realistic mail, {nasty_ratio:.2f}x on nasty"
    )
    for name, error in results["policy.default"][2].items():
        print(f"  policy.default failed on {name}: {error}")
    for name, error in results["compat32"][2].items():
        print(f"  compat32 failed on {name}: {error}")
    differences = disagreements(realistic[:20])
    print(f"\nfield disagreements on realistic mail: {len(differences)}")
    for difference in differences:
        print(f"  {difference}")
    if options.memory_mb:
        raw = big_message(options.memory_mb)
        print(f"\npeak memory for one {len(raw) / 2**20:.0f} MB message (beyond the raw bytes):")
        for label, parse in (
            ("compat32", compat32_record),
            ("policy.default", default_policy_record),
        ):
            print(f"  {label:<16}{peak_memory_mb(parse, raw):>8.0f} MB")


if __name__ == "__main__":
    main()
