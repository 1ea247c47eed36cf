"""Memory for one huge message, and poll time against folder size (IMAP, implicit TLS).

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.memory                          # 50 MB attachment; 100 vs 10,000
    python -m benchmarks.memory --attachment-mb 20 --big 20000 --polls 9

(a) A message with a short text part and one random ~50 MB attachment (base64 in the
message, so the message is ~4/3 of that) is APPENDed, then received with
``ImapHook.receive(max_emails=1)`` in a fresh child process. The child reports its peak
RSS (``ru_maxrss``) growth over its baseline after imports and after reading the
connection, as a multiple of the message size, and checks the attachment on disk (size
and SHA-256).

(b) Two users' inboxes, one with ``--small`` and one with ``--big`` seen messages, bulk
loaded as maildir files (owned by ``nobody``) that Dovecot indexes on the first SELECT.
Before each timed poll, 5 fresh unseen messages are APPENDed; the poll takes them with
``ImapHook.receive(max_emails=5, unseen_only=True)`` in a new session, timed from
connecting to logging out; the table shows medians.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    define_imap_connection,
    machine_note,
    prepare_airflow_home,
    report_to_parent,
    run_child,
    status_kb,
)
from benchmarks.servers import bench_workdir, dovecot_server

PASSWORD = "memory-Secret-2024"
HUGE_USER, SMALL_USER, BIG_USER = "huge", "small", "big"
MiB = 2**20


# --- (a) one huge message, received in a child process ------------------------------------


def huge_message(attachment_bytes: int) -> tuple[bytes, str]:
    """The raw message and the SHA-256 of its attachment (random, so incompressible)."""
    data = os.urandom(attachment_bytes)
    mail = EmailMessage()
    mail["From"] = "Archive <archive@example.com>"
    mail["To"] = "info@example.org"
    mail["Subject"] = "Quarterly export"
    mail["Message-ID"] = "<memory-huge@example.com>"
    mail.set_content("The export is attached.\n")
    mail.add_attachment(data, maintype="application", subtype="octet-stream", filename="export.bin")
    return mail.as_bytes(), hashlib.sha256(data).hexdigest()


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` (the kernel's peak RSS) to the current RSS; False if not allowed.

    ``ru_maxrss`` cannot be reset, and Linux carries it over from the parent through
    fork and exec, so a child of a big parent starts with the parent's peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_receive(conn_id: str, attachments_dir: str) -> dict[str, Any]:
    """In a fresh process: imports, the connection, then one ``receive(max_emails=1)``."""
    from airflow_provider_mail.hooks.imap import ImapHook

    hook = ImapHook(conn_id)
    _ = hook.settings
    gc.collect()
    baseline = status_kb("VmRSS") * 1024
    maxrss_baseline = max_rss_bytes()
    hwm_reset = reset_peak_rss()
    started = time.perf_counter()
    with hook:
        records = hook.receive(max_emails=1, attachments_dir=attachments_dir)
    seconds = time.perf_counter() - started
    peak = status_kb("VmHWM") * 1024 if hwm_reset else max_rss_bytes()
    maxrss_peak = max_rss_bytes()
    files = []
    for attachment in records[0]["attachments"] if records else []:
        digest = hashlib.sha256()
        with open(attachment["path"], "rb") as stream:
            while chunk := stream.read(MiB):
                digest.update(chunk)
        files.append(
            {
                "size": attachment["size"],
                "size_on_disk": os.path.getsize(attachment["path"]),
                "sha256": digest.hexdigest(),
            }
        )
    return {
        "baseline": baseline,
        "peak": peak,
        "hwm_reset": hwm_reset,
        "maxrss_baseline": maxrss_baseline,
        "maxrss_peak": maxrss_peak,
        "seconds": seconds,
        "records": len(records),
        "message_size": records[0]["size"] if records else 0,
        "files": files,
    }


def measure_huge(dovecot: Any, conn_id: str, workdir: Path, attachment_bytes: int) -> str:
    raw, sha256 = huge_message(attachment_bytes)
    message_bytes = len(raw)
    started = time.perf_counter()
    dovecot.deliver(HUGE_USER, [raw])
    append_seconds = time.perf_counter() - started
    del raw
    attachments_dir = workdir / "huge-attachments"
    result = run_child("benchmarks.memory", "--child-receive", conn_id, str(attachments_dir))
    growth = result["peak"] - result["baseline"]
    files = result["files"]
    written = (
        len(files) == 1
        and files[0]["size_on_disk"] == attachment_bytes
        and files[0]["size"] == attachment_bytes
        and files[0]["sha256"] == sha256
    )
    rows = [
        ("message size (as fetched)", f"{message_bytes / MiB:.1f} MiB ({message_bytes:,} bytes)"),
        ("attachment size (decoded)", f"{attachment_bytes / MiB:.1f} MiB"),
        ("APPEND (untimed setup)", f"{append_seconds:.1f} s"),
        ("child RSS after imports + connection", f"{result['baseline'] / MiB:.0f} MiB"),
        (
            "child peak RSS ("
            + ("`VmHWM`, reset at baseline" if result["hwm_reset"] else "`ru_maxrss`")
            + ")",
            f"{result['peak'] / MiB:.0f} MiB",
        ),
        (
            "child `ru_maxrss` at baseline / after (inherited from the parent)",
            f"{result['maxrss_baseline'] / MiB:.0f} / {result['maxrss_peak'] / MiB:.0f} MiB",
        ),
        ("**peak growth**", f"**{growth / MiB:.0f} MiB**"),
        ("**peak growth / message size**", f"**{growth / message_bytes:.2f}x** (target < 3x)"),
        ("peak growth / attachment size", f"{growth / attachment_bytes:.2f}x"),
        ("`receive(max_emails=1)` time", f"{result['seconds']:.2f} s"),
        (
            "attachment written",
            ("yes, size and SHA-256 match" if written else f"NO: {files}")
            + f" ({result['records']} record)",
        ),
    ]
    lines = ["| | |", "|---|---:|"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# --- (b) poll time against folder size -----------------------------------------------------


def small_message(number: int, seen_folder: str) -> bytes:
    return (
        f"From: Lead {number} <lead{number}@example.com>\r\n"
        "To: info@example.org\r\n"
        f"Subject: Request {number} for {seen_folder}\r\n"
        "Date: Wed, 01 May 2024 09:30:00 +0200\r\n"
        f"Message-ID: <memory-{seen_folder}-{number}-{time.time_ns()}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Hello,\r\nplease call me back about request {number}.\r\n" + "Regards.\r\n" * 20
    ).encode()


def bulk_load(dovecot: Any, user: str, count: int) -> float:
    """``count`` seen messages written straight into ``user``'s maildir; the seconds taken.

    Dovecot reads a maildir it does not know yet on the first SELECT (which assigns UIDs).
    """
    started = time.perf_counter()
    dovecot.write_maildir(user, [(small_message(number, user), True) for number in range(count)])
    return time.perf_counter() - started


def timed_poll(dovecot: Any, user: str, conn_id: str, workdir: Path, run: int) -> float:
    """Five new unseen messages, then one ``receive(max_emails=5, unseen_only=True)`` in a
    new session, timed (wall seconds) from connecting to logging out."""
    from airflow_provider_mail.hooks.imap import ImapHook

    dovecot.deliver(user, [small_message(n, f"fresh-{run}") for n in range(5)])
    hook = ImapHook(conn_id)
    _ = hook.settings  # reading the connection is not the poll
    started = time.perf_counter()
    with hook:
        records = hook.receive(
            max_emails=5, unseen_only=True, attachments_dir=str(workdir / "polls" / str(run))
        )
    seconds = time.perf_counter() - started
    if len(records) != 5:
        raise RuntimeError(f"the poll of {user} returned {len(records)} of 5 messages")
    return seconds


def first_select(dovecot: Any, user: str) -> float:
    """The one-off SELECT that makes Dovecot index a maildir it has not seen."""
    started = time.perf_counter()
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        client.logout()
    return time.perf_counter() - started


def measure_folders(
    dovecot: Any, conn_ids: dict[str, str], workdir: Path, sizes: dict[str, int], polls: int
) -> str:
    loads = {user: bulk_load(dovecot, user, count) for user, count in sizes.items()}
    indexing = {user: first_select(dovecot, user) for user in sizes}
    times: dict[str, list[float]] = {user: [] for user in sizes}
    for run in range(polls + 1):
        # Interleaved, so that drift on a shared machine spreads over both folders.
        for user in sizes:
            seconds = timed_poll(dovecot, user, conn_ids[user], workdir, run)
            if run:  # the first is a warm-up: imports, the server's caches
                times[user].append(seconds)
    small, big = (statistics.median(times[user]) for user in sizes)
    setup = ", ".join(
        f"{sizes[user]:,} messages written in {loads[user]:.1f} s, first SELECT (indexing) "
        f"{indexing[user] * 1000:.0f} ms"
        for user in sizes
    )
    counts = list(sizes.values())
    return (
        f"| folder | {counts[0]:,} messages | {counts[1]:,} messages | ratio |\n"
        f"|---|---:|---:|---:|\n| one poll, new session (ms) | {small * 1000:.1f} | "
        f"{big * 1000:.1f} | {big / small:.2f} |\n\nBulk load: {setup}."
    )


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attachment-mb", type=float, default=50.0, help="MiB, decoded")
    parser.add_argument("--small", type=int, default=100, help="messages in the small folder")
    parser.add_argument("--big", type=int, default=10_000, help="messages in the big folder")
    parser.add_argument("--polls", type=int, default=7, help="timed polls per mode (median)")
    parser.add_argument("--child-receive", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_receive:
        report_to_parent(child_receive(*args.child_receive))
        return

    home = prepare_airflow_home()
    users = {HUGE_USER: PASSWORD, SMALL_USER: PASSWORD, BIG_USER: PASSWORD}
    try:
        with (
            bench_workdir() as (workdir, certificate),
            dovecot_server(workdir, certificate, users) as dovecot,
        ):
            conn_ids: dict[str, str] = {}
            for user in users:
                conn_ids[user] = define_imap_connection(
                    f"memory_{user}",
                    port=dovecot.imaps_port,
                    login=user,
                    password=PASSWORD,
                    certificate_pem=certificate.pem,
                    timeout=120,
                )
            sections: list[tuple[str, Callable[[], str]]] = [
                (
                    f"(a) One message with a {args.attachment_mb:g} MiB attachment, "
                    "`ImapHook.receive(max_emails=1)` in a fresh process",
                    lambda: measure_huge(
                        dovecot,
                        conn_ids[HUGE_USER],
                        workdir,
                        int(args.attachment_mb * MiB),
                    ),
                ),
                (
                    f"(b) One poll (`max_emails=5`) of a folder of {args.small:,} vs "
                    f"{args.big:,} messages (median of {args.polls})",
                    lambda: measure_folders(
                        dovecot,
                        conn_ids,
                        workdir,
                        {SMALL_USER: args.small, BIG_USER: args.big},
                        args.polls,
                    ),
                ),
            ]
            for title, section in sections:
                print(f"Measuring {title[:3]} ...", flush=True)
                body = section()
                print(f"\n### {title}\n\n{body}\n", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"IMAP over implicit TLS (verified), loopback. {machine_note()}")


if __name__ == "__main__":
    main()
