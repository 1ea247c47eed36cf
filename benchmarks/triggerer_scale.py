"""Many ``ReceiveEmailTrigger`` in one event loop, as Airflow's triggerer runs them.

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.triggerer_scale                      # N = 100, 250, 500; 30 s each
    python -m benchmarks.triggerer_scale --counts 500 --seconds 60 --threads 64

For each N, a fresh child process (so memory and CPU belong to that N alone) runs N
triggers in AssetWatcher mode (``unseen_only=True``, ``mark_seen=True``, ``delay=5``), each
trigger's ``run()`` driven by its own task in one asyncio loop, as the triggerer does.
Trigger ``i`` watches its own folder ``w<i // users>`` of user ``u<i % users>`` over
implicit TLS (verified against the throw-away certificate); connections come from
``AIRFLOW_CONN_*`` variables, which ``BaseHook.aget_connection`` reads outside a
triggerer too (the environment-variable secrets backend is always consulted).

Once every trigger has polled once (start-up excluded from every figure), this process
APPENDs a message to a random trigger's folder every 0.5 s over its own IMAP sessions and
tells the child the UID and the time just before the APPEND; the child measures, over the
steady window: its CPU, the event loop's lag (a task sleeping 50 ms and measuring its
oversleep), RSS, open sockets, polls per second, and the latency from APPEND to the
trigger yielding the event that names that UID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from benchmarks.harness import define_connection, machine_note, prepare_airflow_home
from benchmarks.servers import bench_workdir, dovecot_server

PASSWORD = "scale-Secret-2024"
LAG_PROBE_SECONDS = 0.05
MARK = "@@"  # prefix of the child's protocol lines on stdout (Airflow may log there too)
APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


def user_name(number: int) -> str:
    return f"u{number}"


def conn_id(number: int) -> str:
    return f"scale_{user_name(number)}"


def target(index: int, users: int) -> tuple[int, str]:
    """The user number and folder that trigger ``index`` watches."""
    return index % users, f"w{index // users}"


# --- the child: N triggers in one loop -------------------------------------------------


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


def rss_bytes() -> int:
    try:
        import psutil
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise
    return int(psutil.Process().memory_info().rss)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


class Child:
    """What the child process measures while its triggers run."""

    def __init__(self, count: int, users: int, delay: float, use_idle: bool) -> None:
        self.count = count
        self.users = users
        self.delay = delay
        self.use_idle = use_idle
        #: hook -> time its last ``find_new`` started
        self.last_poll: dict[int, float] = {}
        self.poll_intervals: list[float] = []
        self.poll_seconds: list[float] = []
        #: (trigger index, uid) -> time of the APPEND / of the event
        self.appended: dict[tuple[int, int], float] = {}
        self.events: dict[tuple[int, int], float] = {}
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.measuring = False
        self.failures: list[str] = []

    def watch_polls(self) -> None:
        """Time ``find_new`` calls (in this process only): start-up, poll period, duration."""
        from airflow_provider_mail.hooks.imap import ImapHook

        hook_class = ImapHook
        original = hook_class.find_new
        child = self

        def find_new(hook: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            result = original(hook, *args, **kwargs)
            previous = child.last_poll.get(id(hook))
            child.last_poll[id(hook)] = started
            if child.measuring:
                child.poll_seconds.append(time.monotonic() - started)
                if previous is not None:
                    child.poll_intervals.append(started - previous)
            return result

        hook_class.find_new = find_new  # type: ignore[method-assign]

    def match(self, key: tuple[int, int]) -> None:
        if key in self.appended and key in self.events:
            self.latencies.append(self.events.pop(key) - self.appended.pop(key))

    async def drive(self, index: int, trigger: Any) -> None:
        """What the triggerer does with one trigger: iterate its ``run()``."""
        async for event in trigger.run():
            now = time.monotonic()
            for uid in event.payload.get("uids", ()):
                self.events[(index, uid)] = now
                self.match((index, uid))

    async def probe_lag(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            if self.measuring:
                self.lags.append(time.monotonic() - started - LAG_PROBE_SECONDS)

    async def read_appends(self) -> None:
        """Lines ``index uid monotonic-time`` from the parent, one per APPEND."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            index, uid, appended = line.split()
            key = (int(index), int(uid))
            self.appended[key] = float(appended)
            self.match(key)

    async def run(self, seconds: float, threads: int) -> dict[str, Any]:
        from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

        if threads:
            from concurrent.futures import ThreadPoolExecutor

            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
        self.watch_polls()
        rss_start = rss_bytes()
        extra = {"use_idle": True} if self.use_idle else {}
        started = time.monotonic()
        tasks = []
        for index in range(self.count):
            user, folder = target(index, self.users)
            trigger = ReceiveEmailTrigger(
                conn_id(user),
                folder=folder,
                unseen_only=True,
                max_emails=5,
                delay=self.delay,
                mark_seen=True,
                **extra,
            )
            tasks.append(asyncio.create_task(self.drive(index, trigger)))
        helpers = [
            asyncio.create_task(self.probe_lag()),
            asyncio.create_task(self.read_appends()),
        ]
        while len(self.last_poll) < self.count:
            done = [task for task in tasks if task.done()]
            if done:
                break
            await asyncio.sleep(0.1)
        startup = time.monotonic() - started
        self.collect_failures(tasks)
        # One more period so that the start-up burst has settled.
        await asyncio.sleep(self.delay)
        print(f"{MARK}ready", flush=True)
        self.measuring = True
        cpu_before, wall_before = time.process_time(), time.monotonic()
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        sockets_max, rss_max = 0, 0
        while time.monotonic() - wall_before < seconds:
            await asyncio.sleep(1.0)
            sockets_max = max(sockets_max, open_sockets())
            rss_max = max(rss_max, rss_bytes())
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        self.measuring = False
        rss_steady, sockets = rss_bytes(), open_sockets()
        print(f"{MARK}stop", flush=True)
        # The last APPENDs still deserve their event: as is, that can take two periods.
        await asyncio.sleep(2 * self.delay + 2.0)
        self.collect_failures(tasks)
        for task in [*tasks, *helpers]:
            task.cancel()
        await asyncio.gather(*tasks, *helpers, return_exceptions=True)
        return {
            "count": self.count,
            "use_idle": self.use_idle,
            "threads": threads or min(32, (os.cpu_count() or 1) + 4),
            "startup_s": startup,
            "cpu_percent": 100 * cpu / wall,
            "voluntary_switches": usage_after.ru_nvcsw - usage_before.ru_nvcsw,
            "lag_p50_ms": 1000 * percentile(self.lags, 0.50),
            "lag_p99_ms": 1000 * percentile(self.lags, 0.99),
            "lag_max_ms": 1000 * max(self.lags, default=math.nan),
            "rss_start_mb": rss_start / 2**20,
            "rss_steady_mb": rss_steady / 2**20,
            "rss_max_mb": rss_max / 2**20,
            "sockets": sockets,
            "sockets_max": sockets_max,
            "polls": len(self.poll_seconds),
            "poll_period_p50_s": percentile(self.poll_intervals, 0.50),
            "poll_period_p99_s": percentile(self.poll_intervals, 0.99),
            "find_new_p50_ms": 1000 * percentile(self.poll_seconds, 0.50),
            "find_new_p99_ms": 1000 * percentile(self.poll_seconds, 0.99),
            "latency_p50_s": percentile(self.latencies, 0.50),
            "latency_p99_s": percentile(self.latencies, 0.99),
            "latency_max_s": max(self.latencies, default=math.nan),
            "events": len(self.latencies),
            "missing": len(self.appended),
            "failures": self.failures[:3],
            "failed_triggers": len(self.failures),
        }

    def collect_failures(self, tasks: list[asyncio.Task[None]]) -> None:
        self.failures = [
            f"{type(task.exception()).__name__}: {task.exception()}"
            for task in tasks
            if task.done() and not task.cancelled() and task.exception() is not None
        ]


def child_main(args: argparse.Namespace) -> None:
    child = Child(args.child, args.users, args.delay, args.use_idle)
    result = asyncio.run(child.run(args.seconds, args.threads))
    print(f"{MARK}result {json.dumps(result)}", flush=True)


# --- the parent: Dovecot, deliveries, the table ------------------------------------------


def message(number: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Lead <lead@example.com>"
    mail["To"] = "info@example.org"
    mail["Subject"] = f"Scale test {number}"
    mail["Message-ID"] = f"<scale-{number}-{time.time_ns()}@example.com>"
    mail.set_content(f"Message {number}.\n")
    return mail.as_bytes()


class Deliverer(threading.Thread):
    """APPENDs to a random trigger's folder every ``interval`` seconds, tells the child."""

    def __init__(
        self, port: int, users: int, count: int, interval: float, child: subprocess.Popen[str]
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.users, self.count, self.interval = port, users, count, interval
        self.child = child
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        sessions: dict[int, IMAPClient] = {}
        rng = random.Random(self.count)
        try:
            next_at = time.monotonic()
            while not self.stopped.is_set():
                index = rng.randrange(self.count)
                user, folder = target(index, self.users)
                if user not in sessions:
                    sessions[user] = IMAPClient("127.0.0.1", port=self.port, ssl=False)
                    sessions[user].login(user_name(user), PASSWORD)
                appended = time.monotonic()
                answer = sessions[user].append(folder, message(self.sent))
                found = APPENDUID.search(answer)
                if found is None:
                    raise RuntimeError(f"Dovecot gave no APPENDUID: {answer!r}")
                assert self.child.stdin is not None
                self.child.stdin.write(f"{index} {int(found[2])} {appended}\n")
                self.child.stdin.flush()
                self.sent += 1
                next_at += self.interval
                self.stopped.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for session in sessions.values():
                with contextlib.suppress(Exception):
                    session.logout()


def run_child(count: int, args: argparse.Namespace, dovecot: Any, use_idle: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.triggerer_scale",
        "--child",
        str(count),
        "--users",
        str(args.users),
        "--seconds",
        str(args.seconds),
        "--delay",
        str(args.delay),
        "--threads",
        str(args.threads),
    ] + (["--use-idle"] if use_idle else [])
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None

    def wait_for(word: str) -> str:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(MARK + word):
                return line[len(MARK + word) :].strip()
        raise RuntimeError(f"the child for N={count} exited ({child.wait()}) before {word!r}")

    deliverer = Deliverer(dovecot.imap_port, args.users, count, args.interval, child)
    try:
        wait_for("ready")
        deliverer.start()
        wait_for("stop")
        processes = dovecot_processes(dovecot)
        deliverer.stopped.set()
        deliverer.join()
        child.stdin.close()
        result: dict[str, Any] = json.loads(wait_for("result"))
    finally:
        deliverer.stopped.set()
        if child.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(60)
        if child.poll() is None:
            child.kill()
            child.wait()
    result["sent"] = deliverer.sent
    result["dovecot_processes"] = processes
    return result


def prepare_mailboxes(dovecot: Any, users: int, folders: int) -> None:
    for user in range(users):
        with dovecot.client(user_name(user)) as client:
            for number in range(folders):
                name = f"w{number}"
                if not client.folder_exists(name):
                    client.create_folder(name)
            client.logout()


def dovecot_processes(dovecot: Any) -> int:
    """Processes of our Dovecot now running (its ``imap`` and ``imap-login`` included)."""
    try:
        import psutil
    except ImportError:
        return -1
    with contextlib.suppress(psutil.Error):
        return 1 + len(psutil.Process(dovecot.process.pid).children(recursive=True))
    return -1


def label(use_idle: bool) -> str:
    return "IDLE" if use_idle else "polling"


def table(results: list[dict[str, Any]]) -> str:
    header = [
        "N",
        "CPU (% of 1 core)",
        "loop lag p50 / p99 / max (ms)",
        "RSS start → steady (MB)",
        "RSS growth (MB)",
        "sockets",
        "poll period p50 / p99 (s)",
        "find_new p50 / p99 (ms)",
        "latency p50 / p99 / max (s)",
        "events / sent",
        "start-up (s)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in results:
        name = f"{row['count']} {label(row['use_idle'])}"
        failed = f", {row['failed_triggers']} failed" if row["failed_triggers"] else ""
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{row['cpu_percent']:.1f}",
                    f"{row['lag_p50_ms']:.1f} / {row['lag_p99_ms']:.1f} / {row['lag_max_ms']:.0f}",
                    f"{row['rss_start_mb']:.0f} → {row['rss_steady_mb']:.0f}",
                    f"{row['rss_steady_mb'] - row['rss_start_mb']:+.0f}",
                    str(row["sockets"]),
                    f"{row['poll_period_p50_s']:.2f} / {row['poll_period_p99_s']:.2f}",
                    f"{row['find_new_p50_ms']:.1f} / {row['find_new_p99_ms']:.1f}",
                    f"{row['latency_p50_s']:.2f} / {row['latency_p99_s']:.2f} / "
                    f"{row['latency_max_s']:.2f}",
                    f"{row['events']} / {row['sent']}{failed}",
                    f"{row['startup_s']:.1f}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def airflow_home() -> Iterator[Path]:
    home = prepare_airflow_home()
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,250,500", help="trigger counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady window per N")
    parser.add_argument("--delay", type=float, default=5.0, help="the triggers' poll delay")
    parser.add_argument("--users", type=int, default=20, help="mailboxes the triggers share")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between APPENDs")
    parser.add_argument(
        "--threads", type=int, default=0, help="default executor size (0: asyncio's own)"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--use-idle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child_main(args)
        return

    counts = [int(count) for count in args.counts.split(",")]
    # Raise the soft limit of open files for the children: one socket per trigger.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    with airflow_home(), bench_workdir() as (workdir, certificate):
        users = {user_name(user): PASSWORD for user in range(args.users)}
        with dovecot_server(workdir, certificate, users) as dovecot:
            prepare_mailboxes(dovecot, args.users, math.ceil(max(counts) / args.users))
            for user in range(args.users):
                define_connection(
                    conn_id(user),
                    "mail_imap",
                    port=dovecot.imaps_port,
                    login=user_name(user),
                    password=PASSWORD,
                    security="ssl",
                    server_certificate=certificate.pem,
                    timeout=30,
                )
            from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

            has_idle = "use_idle" in inspect.signature(ReceiveEmailTrigger).parameters
            runs = [(count, False) for count in counts] + ([(100, True)] if has_idle else [])
            results = []
            for count, use_idle in runs:
                print(f"N={count} {label(use_idle)}: running ...", flush=True)
                result = run_child(count, args, dovecot, use_idle)
                result["delay"] = args.delay
                results.append(result)
                for failure in result["failures"]:
                    print(f"  a trigger failed: {failure}", flush=True)
    print(
        f"\n### {', '.join(str(run[0]) for run in runs)} ReceiveEmailTrigger in one "
        f"event loop (IMAP implicit TLS, delay {args.delay:g} s, unseen_only, mark_seen; "
        f"{args.users} users; one APPEND every {args.interval:g} s; "
        f"steady window {args.seconds:g} s)\n"
    )
    print(table(results))
    executor = results[0]["threads"]
    print(
        f"\nExecutor: {executor} threads"
        f"{' (asyncio default)' if not args.threads else ''}. Dovecot processes at the end "
        f"of the last run: {results[-1]['dovecot_processes']}. "
        + (
            ""
            if has_idle
            else "`ReceiveEmailTrigger` has no `use_idle` parameter: the IDLE row is skipped. "
        )
        + machine_note()
    )
    print("\nRaw results (JSON):")
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
