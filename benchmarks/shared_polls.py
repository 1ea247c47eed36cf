"""N deferred sensors waiting on one mailbox: shared poll versus one poll per trigger.

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.shared_polls                 # N = 100 and 500, 3 rounds each
    python -m benchmarks.shared_polls --counts 250 --rounds 5

For each N and each mode, a fresh child process runs N ``ReceiveEmailTrigger`` in sensor
mode (``unseen_only=True``, ``mark_seen=False``, ``delay=5``) on the same inbox over
implicit TLS, as the triggerer runs the triggers of N deferred runs of one sensor, started
at random moments within one ``delay``. Per
round: a quiet window of ``--quiet`` seconds (start-up excluded) in which the child's CPU,
open sockets and polls per second are measured together with the CPU the Dovecot
processes spend; then one message is APPENDed at a random moment and the latency from the
APPEND to each trigger's event is recorded; then the message is marked seen (what the
resumed task would do) and the next round starts new triggers. "one poll per trigger"
is the same code with sharing switched off (``ReceiveEmailTrigger._shares_polls``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import (
    define_connection,
    machine_note,
    open_sockets,
    percentile,
    prepare_airflow_home,
)
from benchmarks.servers import bench_workdir, dovecot_server

PASSWORD = "shared-Secret-2024"
CONN_ID = "shared_polls"
MARK = "@@"


def dovecot_cpu_seconds(pid: int) -> float:
    """User + system CPU of Dovecot and every process under it (children that exited too)."""
    import psutil

    total = 0.0
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


async def one_round(
    count: int, delay: float, quiet: float, dovecot_pid: int, share: bool
) -> dict[str, Any]:
    from airflow_provider_mail.hooks.imap import ImapHook
    from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

    polls = 0
    find_new = ImapHook.find_new

    def counted(hook: ImapHook, *args: Any) -> Any:
        nonlocal polls
        polls += 1
        return find_new(hook, *args)

    ImapHook.find_new = counted  # type: ignore[method-assign,assignment]
    if not share:
        ReceiveEmailTrigger._shares_polls = lambda self: False  # type: ignore[method-assign]
    triggers = [
        ReceiveEmailTrigger(CONN_ID, unseen_only=True, max_emails=5, delay=delay, mark_seen=False)
        for _ in range(count)
    ]
    runs: list[Any] = [trigger.run() for trigger in triggers]
    fired: list[float] = []

    async def wait(run: Any) -> None:
        await asyncio.sleep(random.uniform(0, delay))  # sensors defer at different times
        await run.__anext__()
        fired.append(time.monotonic())

    tasks = [asyncio.create_task(wait(run)) for run in runs]
    await asyncio.sleep(2 * delay + 2)  # every trigger started and polled once
    polls_before, cpu_before, wall_before = polls, time.process_time(), time.monotonic()
    server_before = dovecot_cpu_seconds(dovecot_pid)
    await asyncio.sleep(quiet)
    wall = time.monotonic() - wall_before
    result: dict[str, Any] = {
        "cpu_percent": 100 * (time.process_time() - cpu_before) / wall,
        "server_cpu_percent": 100 * (dovecot_cpu_seconds(dovecot_pid) - server_before) / wall,
        "polls_per_s": (polls - polls_before) / wall,
        "sockets": open_sockets(),
    }
    await asyncio.sleep(random.uniform(0, delay))
    print(f"{MARK}append", flush=True)
    appended = float(await asyncio.to_thread(sys.stdin.readline))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=4 * delay + 30)
    result["latencies"] = [at - appended for at in fired]
    for run in runs:
        await run.aclose()
    print(f"{MARK}took", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    ImapHook.find_new = find_new  # type: ignore[method-assign]
    return result


def child_main(args: argparse.Namespace) -> None:
    rounds = [
        asyncio.run(one_round(args.child, args.delay, args.quiet, args.dovecot_pid, args.share))
        for _ in range(args.rounds)
    ]
    latencies = [value for row in rounds for value in row["latencies"]]
    summary = {
        key: sum(row[key] for row in rounds) / len(rounds)
        for key in ("cpu_percent", "server_cpu_percent", "polls_per_s")
    }
    summary |= {
        "count": args.child,
        "share": args.share,
        "sockets": max(row["sockets"] for row in rounds),
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_max_s": max(latencies),
        "events": len(latencies),
    }
    print(f"{MARK}result {json.dumps(summary)}", flush=True)


def run_child(count: int, share: bool, args: argparse.Namespace, dovecot: Any) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.shared_polls", "--child", str(count),
        "--rounds", str(args.rounds), "--delay", str(args.delay), "--quiet", str(args.quiet),
        "--dovecot-pid", str(dovecot.process.pid),
    ] + (["--share"] if share else [])  # fmt: skip
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    for line in child.stdout:
        if line.startswith(MARK + "append"):
            with dovecot.client("info") as client:
                appended = time.monotonic()
                client.append("INBOX", message())
            child.stdin.write(f"{appended}\n")
            child.stdin.flush()
        elif line.startswith(MARK + "took"):
            with dovecot.client("info") as client:
                client.select_folder("INBOX")
                client.add_flags(client.search("UNSEEN"), [b"\\Seen"])  # the task took it
            child.stdin.write("ok\n")
            child.stdin.flush()
        elif line.startswith(MARK + "result"):
            result: dict[str, Any] = json.loads(line[len(MARK + "result") :])
            child.wait()
            return result
    raise RuntimeError(f"the child for N={count} exited ({child.wait()}) without a result")


def message() -> bytes:
    return (
        b"From: a@example.com\r\nTo: info@example.com\r\nSubject: wake up\r\n"
        b"Message-ID: <" + os.urandom(8).hex().encode() + b"@example.com>\r\n\r\nhello\r\n"
    )


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| N | mode | polls / s | sockets | CPU, triggerer (% of 1 core) | CPU, Dovecot (%) "
        "| latency p50 / p99 / max (s) | events |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        mode = "shared (default)" if row["share"] else "one per trigger"
        lines.append(
            f"| {row['count']} | {mode} | {row['polls_per_s']:.1f} | {row['sockets']} | "
            f"{row['cpu_percent']:.1f} | {row['server_cpu_percent']:.1f} | "
            f"{row['latency_p50_s']:.2f} / {row['latency_p99_s']:.2f} / "
            f"{row['latency_max_s']:.2f} | {row['events']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,500", help="trigger counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="quiet windows + APPENDs per N")
    parser.add_argument("--delay", type=float, default=5.0, help="the triggers' poll delay")
    parser.add_argument("--quiet", type=float, default=15.0, help="quiet window per round (s)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dovecot-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--share", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child_main(args)
        return
    prepare_airflow_home()
    results = []
    with (
        bench_workdir() as (workdir, certificate),
        dovecot_server(workdir, certificate, {"info": PASSWORD}) as dovecot,
    ):
        define_connection(
            CONN_ID, "mail_imap", port=dovecot.imaps_port, login="info", password=PASSWORD,
            security="ssl", server_certificate=certificate.pem, timeout=30,
        )  # fmt: skip
        for count in [int(count) for count in args.counts.split(",")]:
            for share in (True, False):
                results.append(run_child(count, share, args, dovecot))
                print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(machine_note())
    print(table(results))
    if any(math.isnan(row["latency_p50_s"]) for row in results):
        sys.exit("some rounds produced no events")


if __name__ == "__main__":
    main()
