"""The reference integration in a real deployment keeps running, through crashes.

PostgreSQL, api-server, scheduler, dag-processor, two triggerers and an executor
(``devtools/airflow_deployment.py``), with ``obtain_info_emails_to_leads``
unpaused against the suite's Dovecot and aiosmtpd. Mail arrives in three waves over more
than two minutes; between them a triggerer is killed (-9) while the sensor waits in it, and
in the third wave a hand-over is killed in the middle (messages taken and marked seen, not
yet read). Every email must be forwarded exactly once, by run after run.

The test runs once per executor:

- ``LocalExecutor``: the task process is killed; its supervisor reports the failure and the
  retry delivers. Runs with the default ``pytest`` (and ``make test-deployment``); skipped
  only where PostgreSQL's server is not installed (``make test`` installs it as root).
- ``CeleryExecutor`` (marked ``celery``): Redis as broker and two workers; the whole
  Celery worker running the hand-over is killed with its task, as a lost node would be,
  the scheduler fails the task after its heartbeat timeout and the retry runs on a worker.
  Only ``make test-deployment-celery`` runs it (it installs the ``celery`` extra and
  ``redis-server``); any other run skips it.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_deployment import CELERY_WORKERS, Deployment
from devtools.certs import Certificate
from devtools.connections import mailbox_connection_variable, smtp_connection_variable
from devtools.dovecot import Dovecot
from devtools.postgres import Postgres
from devtools.smtp import SmtpServers
from tests.conftest import REPO
from tests.deployment.redis_server import Redis
from tests.deployment.redis_server import server_binary as redis_binary
from tests.deployment.running import INJECT, MARKS, airflow_home, run, wait_until

DAG_ID = "obtain_info_emails_to_leads"
LEADS = "leads@example.com"
WAVE_GAP = 60.0  # seconds between the starts of two waves: three waves span > 2 minutes

pytestmark = MARKS


def inquiry(wave: int, number: int) -> bytes:
    return (
        f"From: Lead {wave}-{number} <lead{wave}{number}@example.org>\r\n"
        f"To: info@example.com\r\nSubject: Wave {wave} inquiry {number}\r\n"
        f"Message-ID: <wave-{wave}-{number}@example.org>\r\n"
        f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nPrice list, please.\r\n"
    ).encode()


class Mail:
    """What went into the info@ inbox and what came out at the leads' SMTP server, when."""

    def __init__(self, dovecot: Dovecot, smtp: SmtpServers) -> None:
        self.dovecot = dovecot
        self.smtp = smtp
        self.arrived: dict[str, float] = {}
        self.delivered: dict[str, float] = {}
        self.received: list[str] = []

    def deliver(self, wave: int, count: int) -> None:
        messages = [inquiry(wave, number) for number in range(count)]
        self.dovecot.deliver("info", messages)
        now = time.time()
        for number in range(count):
            self.arrived[f"Wave {wave} inquiry {number}"] = now

    def collect(self) -> None:
        """Note newly received forwards and when they were first seen (checked every 0.5 s)."""
        messages = self.smtp.starttls.messages
        now = time.time()
        for message in messages[len(self.received) :]:
            assert message.rcpt_tos == (LEADS,)
            subject = str(message.parsed()["Subject"]).removeprefix("New lead: ")
            self.received.append(subject)
            self.delivered.setdefault(subject, now)

    def all_forwarded(self) -> bool:
        self.collect()
        return set(self.arrived) <= set(self.received)


@pytest.fixture(
    params=[
        pytest.param("LocalExecutor"),
        pytest.param("CeleryExecutor", marks=pytest.mark.celery),
    ]
)
def executor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_url(executor: str) -> Iterator[str | None]:
    """A Redis for the CeleryExecutor's broker; none for the LocalExecutor."""
    if executor != "CeleryExecutor":
        yield None
        return
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (make test-deployment-celery installs it).")
    try:
        import airflow.providers.celery  # noqa: F401
    except ImportError:
        pytest.skip("The celery extra is not installed (make test-deployment-celery does it).")
    server = Redis(binary).start()
    yield server.url
    server.stop()


@pytest.fixture
def deployment(
    postgres: Postgres,
    dovecot: Dovecot,
    certificate: Certificate,
    smtp: SmtpServers,
    tmp_path: Path,
    executor: str,
    broker_url: str | None,
) -> Iterator[Deployment]:
    dovecot.clear("info")
    connections = dict(
        [
            mailbox_connection_variable("mail_imap_default", dovecot, "imap", "info", certificate),
            smtp_connection_variable("mail_smtp_default", smtp.starttls, certificate),
        ]
    )
    dags = [REPO / "dags_examples" / f"{DAG_ID}.py"]
    yield from run(
        Deployment(
            airflow_home(tmp_path),
            postgres.url,
            connections,
            dags,
            executor,
            broker_url,
            pythonpath=[INJECT],
            triggerer_hostname_callable="deployment_hostname.hostname",
        )
    )


def runs(postgres: Postgres, state: str) -> int:
    rows = postgres.query(
        f"select count(*) from dag_run where dag_id = '{DAG_ID}' and state = '{state}'"
    )
    return int(rows[0][0])


def waiting_trigger(postgres: Postgres) -> bool:
    rows = postgres.query("select count(*) from trigger where triggerer_id is not null")
    return int(rows[0][0]) > 0


def triggerer_holding_the_trigger(postgres: Postgres) -> str:
    """The triggerer running the waiting sensor's trigger (its job's host name)."""
    rows = postgres.query(
        "select job.hostname from trigger join job on job.id = trigger.triggerer_id",
    )
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_reference_integration_forwards_every_wave_exactly_once_through_kills(
    postgres: Postgres, deployment: Deployment, dovecot: Dovecot, smtp: SmtpServers
) -> None:
    setup = "2 triggerers"
    if deployment.executor == "CeleryExecutor":
        setup += ", 2 Celery workers on Redis"
    mail = Mail(dovecot, smtp)
    wait_until("the first run waits in a triggerer", lambda: waiting_trigger(postgres), 240, mail)

    # Wave 1: a plain hand-over.
    wave_started = time.monotonic()
    mail.deliver(1, 4)
    wait_until("wave 1 is forwarded", mail.all_forwarded, 180, mail)

    # Wave 2: the triggerer holding the waiting sensor's trigger is killed first; the
    # other triggerer takes the trigger over once the dead one misses its heartbeats.
    wait_until("the next run waits in a triggerer", lambda: waiting_trigger(postgres), 120, mail)
    killed = triggerer_holding_the_trigger(postgres)
    deployment.kill(killed)
    time.sleep(max(0.0, WAVE_GAP - (time.monotonic() - wave_started)))
    wave_started = time.monotonic()
    mail.deliver(2, 4)
    wait_until("wave 2 is forwarded", mail.all_forwarded, 240, mail)
    deployment.restart(killed)

    # Wave 3: the task process is killed mid-hand-over (after the messages were taken and
    # marked seen, before they were read); the task's retry delivers them. On Celery the
    # whole worker running it dies with it, and is started again (the retry may run on
    # either worker).
    wait_until("the next run waits in a triggerer", lambda: waiting_trigger(postgres), 120, mail)
    deployment.pause_file.touch()
    time.sleep(max(0.0, WAVE_GAP - (time.monotonic() - wave_started)))
    mail.deliver(3, 3)
    pid_file = Path(f"{deployment.pause_file}.pid")
    wait_until("a task process pauses mid-hand-over", pid_file.exists, 180, mail)
    deployment.pause_file.unlink()
    task_pid = int(pid_file.read_text())
    if deployment.executor == "CeleryExecutor":
        killed_in_handover = deployment.component_running(task_pid)
        deployment.kill(killed_in_handover)
        deployment.restart(killed_in_handover)
    else:
        killed_in_handover = "a task process"
        os.kill(task_pid, signal.SIGKILL)
    wait_until("wave 3 is forwarded", mail.all_forwarded, 300, mail)
    time.sleep(5)  # a duplicate would arrive now
    mail.collect()

    received = Counter(mail.received)
    duplicates = sum(received.values()) - len(received)
    lost = sorted(set(mail.arrived) - set(received))
    latencies = [mail.delivered[s] - mail.arrived[s] for s in mail.arrived if s in mail.delivered]
    succeeded = runs(postgres, "success")
    retried = postgres.query(
        f"select count(*) from task_instance where dag_id = '{DAG_ID}' and try_number > 1"
    )[0][0]
    print(
        f"\ndeployment ({deployment.executor}, PostgreSQL, {setup}; killed {killed} and "
        f"{killed_in_handover} mid-hand-over): sent {len(mail.arrived)}, "
        f"received {sum(received.values())}, duplicates {duplicates}, lost {len(lost)}, "
        f"successful runs {succeeded}, task instances retried {retried}; "
        f"arrival-to-delivery latency median {statistics.median(latencies):.1f} s, "
        f"max {max(latencies):.1f} s"
    )
    assert lost == []
    assert duplicates == 0
    assert succeeded >= 3  # run after run, not one run that stops
    if deployment.executor == "CeleryExecutor":
        for name in CELERY_WORKERS:  # the killed worker came back and stayed up
            assert deployment.processes[name].poll() is None, deployment.log_tail(name)
