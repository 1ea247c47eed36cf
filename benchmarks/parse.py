"""CPU of ``build_record`` against a bare ``email.message_from_bytes`` (compat32), per message.

Run from the repository root::

    python -m benchmarks.parse                      # corpus and 200 realistic messages
    python -m benchmarks.parse --repeat 7 --compare-with /tmp/old_parse.py

Messages: CPython's own email test data (of this interpreter), ``tests/corpus`` (nasty
mail) and realistic info@ mail (names, UTF-8, text + HTML, a PDF on every other one).
Each message is parsed by every contender in turn (side by side, so load on the machine
hits all alike), CPU time, best of ``--repeat`` samples of 20 calls. The issue's target is
``build_record`` at most 1.5x the bare parse (median). ``--compare-with`` times another
``parse.py`` (e.g. ``git show main:airflow_provider_mail/mail/parse.py > /tmp/old_parse.py``)
in the same run. Attachments go to a sink that keeps nothing: this measures parsing only.
"""

from __future__ import annotations

import argparse
import email
import importlib.util
import statistics
import sysconfig
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from airflow_provider_mail.mail import parse as this_parse

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
BARE = "`email.message_from_bytes` (compat32)"


class DiscardingSink:
    """An attachment sink that keeps nothing."""

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        return f"memory://{message_key}/{filename}"


def realistic_messages(count: int) -> list[bytes]:
    """Messages like an info@ inbox receives: names, UTF-8, text + HTML, a small PDF."""
    names = ["Jane Doe", "Renée Müller", "Doe, John", "李小龙", "O'Brien"]
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
    messages = []
    for number in range(count):
        message = EmailMessage()
        name = names[number % len(names)]
        message["From"] = f'"{name}" <sender{number}@example.com>'
        message["To"] = "info@example.org, Sales <sales@example.org>"
        message["Subject"] = f"Demande de devis n°{number} - café ☕"
        message["Date"] = "Wed, 01 May 2024 09:30:00 +0200"
        message["Message-ID"] = f"<bench-{number}@example.com>"
        text = f"Bonjour,\n\nmerci de m'envoyer un devis pour {number} unités.\n\n{name}\n"
        message.set_content(text)
        message.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
        if number % 2 == 0:
            message.add_attachment(
                pdf, maintype="application", subtype="pdf", filename=f"devis-{number}.pdf"
            )
        messages.append(message.as_bytes())
    return messages


def corpus_messages() -> list[bytes]:
    """CPython's email test messages (of this interpreter) and ``tests/corpus``."""
    data = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    paths = sorted(data.glob("msg_*.txt")) + sorted(CORPUS.glob("*.eml"))
    return [path.read_bytes() for path in paths]


def record_builder(module: Any) -> Callable[[bytes], object]:
    return lambda raw: module.build_record(raw, folder="INBOX", attachments=DiscardingSink())


def cpu_per_message(parse: Callable[[bytes], object], raw: bytes, repeat: int) -> float:
    """Best-of-``repeat`` CPU seconds of one call (each sample 20 calls)."""
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(20):
            parse(raw)
        samples.append((time.process_time() - started) / 20)
    return min(samples)


def table(title: str, messages: list[bytes], contenders: dict[str, Any], repeat: int) -> str:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for raw in messages:
        for name, parse in contenders.items():
            times[name].append(cpu_per_message(parse, raw, repeat))
    bare = times[BARE]
    lines = [
        f"### {title}: {len(messages)} messages, CPU per message, best of {repeat}\n",
        "| parser | median (µs) | x bare parse (medians) | median of per-message ratios |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        ratios = [value / base for value, base in zip(values, bare, strict=True)]
        lines.append(
            f"| {name} | {statistics.median(values) * 1e6:.0f} | "
            f"{statistics.median(values) / statistics.median(bare):.2f} | "
            f"{statistics.median(ratios):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="realistic messages")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare-with", help="another parse.py to time side by side")
    parser.add_argument("--corpus", action="store_true", help="only the corpus table")
    args = parser.parse_args(argv)
    contenders: dict[str, Any] = {
        BARE: email.message_from_bytes,
        "`build_record` (this checkout)": record_builder(this_parse),
    }
    if args.compare_with:
        spec = importlib.util.spec_from_file_location("compared_parse", args.compare_with)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        contenders[f"`build_record` ({args.compare_with})"] = record_builder(module)
    sets = {
        "CPython's email test data and tests/corpus": corpus_messages(),
    }
    if not args.corpus:
        sets["Realistic info@ mail"] = realistic_messages(args.messages)
    for title, messages in sets.items():
        print("\n" + table(title, messages, contenders, args.repeat))


if __name__ == "__main__":
    main()
