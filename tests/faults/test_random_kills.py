"""Exactly-once hand-over under SIGKILL at random points, with mail arriving continuously.

Each try of a sensor task instance runs in a forked child process, as a worker would:
it delivers an unfinished claim of an earlier try, or waits for mail (deferrable: the
trigger peeks and the task completes; poke: the sensor polls), stores its result
(the XCom, written atomically) and then marks the try successful. A timer or a fault
point kills the child with SIGKILL at a random moment; like Airflow, the parent then
retries the same task instance until a try succeeds, and only a successful try's result
reaches "downstream". Every Message-ID delivered must reach downstream exactly once.

The AssetWatcher path is run the same way with the trigger as the killed process. A kill
in the instant between an event going out and its pending mark being cleared repeats
that event (counted and printed); every event starts a "run" that reads its messages
with ``fetch_claimed(payload, run_id=...)``, and every Message-ID must reach those runs
exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.faults.injection import HOOK_POINTS, die, inject_crash, run_forked

SEED = int(os.environ.get("MAIL_FAULTS_SEED", "20261129"))
KILLS = 25  # per hand-over path; the suite kills at least 3 x KILLS processes
FAULT_POINTS = [*HOOK_POINTS, "after_result"]
NO_MAIL = 3
# 25 kills per path, each followed by a new forked try: about a minute per path alone,
# several when the other xdist workers run their own kill tests beside it. A limit, not a
# timing check.
pytestmark = pytest.mark.timeout(900)


class Mailflow:
    """Delivers numbered messages one by one in the background, while the tries run.

    At most as many as the test has allowed so far (``allow``, a few per try): the amount
    of mail grows with the number of tries, not with the time a loaded machine takes for
    them (a time-paced flow made slow tries face ever more mail, and the suite ran past
    its limit on a busy 2-core CI machine).
    """

    def __init__(self, dovecot: Dovecot, prefix: str) -> None:
        self.dovecot, self.prefix, self.delivered, self.allowed = dovecot, prefix, 0, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def ids(self) -> set[str]:
        return {f"<{self.prefix}-{i}@faults>" for i in range(self.delivered)}

    def allow(self, count: int) -> None:
        self.allowed += count

    def _run(self) -> None:
        while not self.stopping.is_set():
            if self.delivered >= self.allowed:
                time.sleep(0.05)
                continue
            i = self.delivered
            raw = (
                f"From: a@b\r\nSubject: {i}\r\nMessage-ID: <{self.prefix}-{i}@faults>\r\n\r\nx\r\n"
            )
            self.dovecot.deliver("info", [raw.encode()])
            self.delivered += 1
            time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def __enter__(self) -> Mailflow:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _arm(rng: random.Random) -> str | None:
    """Kill this process at a random moment, or at a random named point (returned).

    A third of the tries are not armed, so that runs complete and mail keeps flowing.
    """
    draw = rng.random()
    if draw < 1 / 3:
        threading.Timer(rng.uniform(0.0, 0.3), die).start()
        return None
    if draw < 2 / 3:
        return rng.choice(FAULT_POINTS)
    return None


def _sensor_try(conn_id: str, run_id: str, deferrable: bool, out: Path, seed: int) -> None:
    """One try of the sensor task instance; runs in the forked child."""
    rng = random.Random(seed)
    point = _arm(rng)
    sensor = ReceiveEmailSensor(
        task_id="receive",
        conn_id=conn_id,
        unseen_only=True,
        max_emails=5,
        delay=0.05,
        timeout=1.5,
        deferrable=deferrable,
        attachments_dir=str(out / "attachments"),
    )
    original_hook = sensor._hook
    sensor._hook = lambda: inject_crash(original_hook(), point)  # type: ignore[method-assign]
    context = {
        "ti": SimpleNamespace(dag_id="faults", task_id="receive", run_id=run_id, map_index=-1)
    }
    try:
        records = sensor.deliver_unfinished(context) or _wait(sensor, context, deferrable)
    except AirflowSensorTimeout:
        os._exit(NO_MAIL)
    result = out / f"{run_id}.json"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps([record["message_id"] for record in records]))
    tmp.replace(result)  # the XCom: stored atomically
    if point == "after_result":
        die()
    (out / f"{run_id}.done").touch()  # the try succeeded: downstream may read the result
    os._exit(0)


def _wait(sensor: ReceiveEmailSensor, context: Any, deferrable: bool) -> list[dict[str, Any]]:
    if not deferrable:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            done = sensor.poke(context)
            if not isinstance(done, bool) and done.is_done:
                return list(done.xcom_value)
            time.sleep(0.05)
        raise AirflowSensorTimeout("no mail")
    while True:
        try:
            sensor.execute(context)
        except TaskDeferred as deferred:
            event = asyncio.run(_first_event(deferred.trigger))
            try:
                return list(sensor.execute_complete(context, event))
            except TaskDeferred:
                continue


async def _first_event(trigger: Any) -> dict[str, Any]:
    events = trigger.run()
    try:
        return dict((await events.__anext__()).payload)
    finally:
        await events.aclose()


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_every_message_reaches_downstream_exactly_once_despite_kills(
    airflow_db: object,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
    deferrable: bool,
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    rng = random.Random(SEED + deferrable)
    kills = runs = 0
    downstream: Counter[str] = Counter()
    with Mailflow(dovecot, f"kill-{deferrable}") as mailflow:
        while True:
            run_id = f"run-{deferrable}-{runs}"
            runs += 1
            while True:  # Airflow's retries of one task instance
                seed = rng.randrange(1 << 30)
                mailflow.allow(1)
                code = run_forked(_sensor_try, conn_id, run_id, deferrable, tmp_path, seed)
                if (tmp_path / f"{run_id}.done").exists() or code == NO_MAIL:
                    break
                assert code == -signal.SIGKILL, f"try failed with exit code {code}"
                kills += 1
            if kills >= KILLS and mailflow.thread.is_alive():
                mailflow.stop()
            if code == NO_MAIL and not mailflow.thread.is_alive():
                break
            if code != NO_MAIL:
                downstream.update(json.loads((tmp_path / f"{run_id}.json").read_text()))
    print(f"\n{runs} runs, {kills} kills, {sum(downstream.values())} messages downstream")
    assert kills >= KILLS
    assert mailflow.delivered >= 20
    assert sorted(m for m, n in downstream.items() if n > 1) == [], "duplicated"
    assert mailflow.ids() - set(downstream) == set(), "lost"
    assert set(downstream) - mailflow.ids() == set()


def _trigger_life(conn_id: str, events_log: Path, seed: int) -> None:
    """One life of an AssetWatcher trigger; every event it yields is 'persisted'."""
    rng = random.Random(seed)
    threading.Timer(rng.uniform(0.05, 0.6), die).start()
    trigger = ReceiveEmailTrigger(conn_id, unseen_only=True, max_emails=3, delay=0.05)

    async def run() -> None:
        async for event in trigger.run():
            with events_log.open("a") as log:
                log.write(json.dumps(dict(event.payload)) + "\n")
                log.flush()
                os.fsync(log.fileno())

    asyncio.run(run())


def test_asset_watcher_path_reaches_downstream_runs_exactly_once_despite_kills(
    airflow_db: object,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    events_log = tmp_path / "events.jsonl"
    rng = random.Random(SEED)
    kills = 0
    with Mailflow(dovecot, "watch") as mailflow:
        while kills < KILLS:
            mailflow.allow(2)
            assert run_forked(_trigger_life, conn_id, events_log, rng.randrange(1 << 30)) == -9
            kills += 1
    # A last life without a kill, long enough to emit what is left.
    code = run_forked(_last_life, conn_id, events_log)
    assert code == 0
    events = [json.loads(line) for line in events_log.read_text().splitlines()]
    emitted: Counter[int] = Counter(uid for event in events for uid in event["uids"])
    repeated = sum(n - 1 for n in emitted.values())
    # Every event starts a DAG run; each run reads its messages with its own run_id.
    downstream: Counter[str] = Counter()
    with ImapHook(conn_id) as hook:
        for number, event in enumerate(events):
            for record in hook.fetch_claimed(event, run_id=f"asset-run-{number}"):
                downstream[str(record["message_id"])] += 1
    print(f"\n{kills} kills, {len(emitted)} messages, {repeated} repeated events")
    assert sorted(m for m, n in downstream.items() if n > 1) == [], "duplicated"
    assert mailflow.ids() - set(downstream) == set(), "lost"


def _last_life(conn_id: str, events_log: Path) -> None:
    threading.Timer(2.0, lambda: os._exit(0)).start()
    _trigger_life_forever(conn_id, events_log)


def _trigger_life_forever(conn_id: str, events_log: Path) -> None:
    trigger = ReceiveEmailTrigger(conn_id, unseen_only=True, max_emails=3, delay=0.05)

    async def run() -> None:
        async for event in trigger.run():
            with events_log.open("a") as log:
                log.write(json.dumps(dict(event.payload)) + "\n")

    asyncio.run(run())
