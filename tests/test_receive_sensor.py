"""ReceiveEmailSensor in real Airflow (dag.test) against real Dovecot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.airflow_runs import run_dag as _run_dag
from tests.airflow_runs import task_result, task_states
from tests.dags import receive_dags


def run_dag(dag: object, conn_id: str, folder: str = "") -> object:
    """Every param passed explicitly: dag.test() keeps the last run's conf as defaults."""
    return _run_dag(dag, conn_id=conn_id, folder=folder)


@pytest.fixture
def info_inbox(dovecot: Dovecot) -> Iterator[Dovecot]:
    dovecot.clear("info")
    yield dovecot
    dovecot.clear("info")


@pytest.mark.parametrize(
    "dag",
    [receive_dags.receive_unseen_deferrable, receive_dags.receive_unseen_poke],
    ids=["deferrable", "poke"],
)
def test_reference_example_ten_unseen_max_five(
    airflow_db: object,
    mail_connection: ConnFactory,
    info_inbox: Dovecot,
    certificate: Certificate,
    dag: object,
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    info_inbox.deliver("info", numbered(10))

    first = run_dag(dag, conn_id=conn_id)
    assert task_result(first, "collect") == [f"Lead {i}" for i in range(5)]
    records = task_result(first, "receive")
    assert [r["message_id"] for r in records] == [f"<lead-{i}@example.com>" for i in range(5)]
    assert records[0]["from"] == "Person 0 <person0@example.com>"
    assert records[0]["uidvalidity"] and records[0]["uid"]

    second = run_dag(dag, conn_id=conn_id)
    assert task_result(second, "collect") == [f"Lead {i}" for i in range(5, 10)]

    with info_inbox.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN") == []


def test_empty_mailbox_waits_until_mail_arrives(
    airflow_db: object, mail_connection: ConnFactory, info_inbox: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "starttls", certificate)
    late = threading.Timer(3.0, info_inbox.deliver, args=("info", numbered(1, "Late")))
    late.start()
    started = time.monotonic()
    try:
        run = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id)
    finally:
        late.join()
    assert time.monotonic() - started >= 3.0
    assert task_result(run, "collect") == ["Late 0"]


def test_unseen_only_false_returns_every_message_each_poll(
    airflow_db: object, mail_connection: ConnFactory, info_inbox: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    info_inbox.deliver("info", numbered(2, "Old"), flags=("\\Seen",))
    info_inbox.deliver("info", numbered(1, "New"))

    first = run_dag(receive_dags.receive_all_deferrable, conn_id=conn_id)
    assert task_result(first, "collect") == ["Old 0", "Old 1", "New 0"]
    second = run_dag(receive_dags.receive_all_deferrable, conn_id=conn_id)
    assert task_result(second, "collect") == ["Old 0", "Old 1", "New 0"]


def test_other_folder_is_read(
    airflow_db: object, mail_connection: ConnFactory, info_inbox: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    info_inbox.deliver("info", numbered(1, "Inbox"))
    info_inbox.deliver("info", numbered(2, "Archived"), folder="Archive")
    run = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id, folder="Archive")
    assert task_result(run, "collect") == ["Archived 0", "Archived 1"]
    assert task_result(run, "receive")[0]["folder"] == "Archive"


@pytest.mark.parametrize(
    "dag",
    [receive_dags.receive_unseen_deferrable, receive_dags.receive_unseen_poke],
    ids=["deferrable", "poke"],
)
def test_pop3_remembers_what_it_handed_over(
    airflow_db: object,
    mail_connection: ConnFactory,
    info_inbox: Dovecot,
    certificate: Certificate,
    dag: object,
) -> None:
    conn_id = receive_connection(
        mail_connection,
        info_inbox,
        "pop3",
        "ssl",
        certificate,
        conn_id=f"pop3_uidl_{dag.dag_id}",  # type: ignore[attr-defined]
    )
    info_inbox.deliver("info", numbered(7, "Pop"))
    first = run_dag(dag, conn_id=conn_id)
    assert task_result(first, "collect") == [f"Pop {i}" for i in range(5)]
    assert task_result(first, "receive")[0]["uidl"]
    second = run_dag(dag, conn_id=conn_id)
    assert task_result(second, "collect") == ["Pop 5", "Pop 6"]


def test_pop3_with_a_folder_fails_before_touching_mail(
    airflow_db: object, mail_connection: ConnFactory, info_inbox: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "pop3", "ssl", certificate)
    info_inbox.deliver("info", numbered(1))
    run = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id, folder="Archive")
    assert task_states(run)["receive"] == "failed"
    with info_inbox.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("UNSEEN")) == 1


@pytest.mark.parametrize("bad", [0, -2, -100])
def test_max_emails_out_of_range_is_an_error_when_the_task_is_built(bad: int) -> None:
    with pytest.raises(MailConfigError, match="max_emails"):
        ReceiveEmailSensor(task_id="r", max_emails=bad)


def test_negative_delay_and_poke_interval_are_errors_when_the_task_is_built() -> None:
    with pytest.raises(MailConfigError, match="delay"):
        ReceiveEmailSensor(task_id="r", delay=-1)
    with pytest.raises(MailConfigError, match="poke_interval"):
        ReceiveEmailSensor(task_id="r", poke_interval=3)


def test_delay_is_the_poke_interval() -> None:
    from datetime import timedelta

    sensor = ReceiveEmailSensor(task_id="r", delay=timedelta(seconds=7))
    assert sensor.poke_interval == 7
    assert sensor.deferrable is True
    assert sensor.max_emails == 5
    assert sensor.conn_id == "mail_imap_default"


def test_recreated_folder_neither_repeats_nor_skips(
    airflow_db: object, mail_connection: ConnFactory, info_inbox: Dovecot, certificate: Certificate
) -> None:
    """A new UIDVALIDITY: handed-over messages (same Message-ID) are not delivered again."""
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    originals = numbered(7, "Kept")
    info_inbox.deliver("info", originals, folder="Recreate")
    first = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id, folder="Recreate")
    assert task_result(first, "collect") == [f"Kept {i}" for i in range(5)]
    old_uidvalidity = task_result(first, "receive")[0]["uidvalidity"]

    # Dovecot derives UIDVALIDITY from the clock: recreate the folder until it is new.
    with info_inbox.client("info") as client:
        new_uidvalidity = old_uidvalidity
        while new_uidvalidity == old_uidvalidity:
            client.delete_folder("Recreate")
            client.create_folder("Recreate")
            new_uidvalidity = client.folder_status("Recreate", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    # Restored from a backup without flags, plus two new messages.
    info_inbox.deliver("info", [*originals, *numbered(2, "New")], folder="Recreate")

    second = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id, folder="Recreate")
    records = task_result(second, "receive")
    assert records[0]["uidvalidity"] != old_uidvalidity
    assert task_result(second, "collect") == ["Kept 5", "Kept 6", "New 0", "New 1"]


@pytest.mark.parametrize(
    ("dag", "state"),
    [(receive_dags.timeout_fails, "failed"), (receive_dags.timeout_soft_fails, "skipped")],
    ids=["timeout", "soft_fail"],
)
def test_no_mail_within_timeout_fails_or_skips_like_any_sensor(
    airflow_db: object,
    mail_connection: ConnFactory,
    info_inbox: Dovecot,
    certificate: Certificate,
    dag: object,
    state: str,
) -> None:
    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    run = _run_dag(dag, conn_id=conn_id)
    assert task_states(run)["receive"] == state


def test_deferring_again_keeps_the_time_left_of_the_timeout(
    mail_connection: ConnFactory,
    info_inbox: Dovecot,
    certificate: Certificate,
    airflow_db: object,
    tmp_path: Path,
) -> None:
    """Messages gone before the hand-over: the sensor waits again, not for a new timeout."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.exceptions import TaskDeferred

    from airflow_provider_mail.hooks.imap import ImapHook

    conn_id = receive_connection(mail_connection, info_inbox, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        uidvalidity = hook.find_new(None, unseen_only=True, max_emails=1).uidvalidity
    sensor = ReceiveEmailSensor(
        task_id="obtain",
        conn_id=conn_id,
        unseen_only=True,
        timeout=600,
        delay=1,
        attachments_dir=str(tmp_path),
    )
    event = {
        "status": "success",
        "protocol": "imap",
        "folder": "INBOX",
        "uidvalidity": uidvalidity,
        "uids": [999999],  # deleted between the trigger's poll and the hand-over
        "uidls": [],
        "deadline": time.time() + 100,
    }
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute_complete({}, event)
    timeout = deferred.value.trigger.timeout
    assert timeout is not None and 90 < timeout <= 100
