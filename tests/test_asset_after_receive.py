"""``after_receive`` on the AssetWatcher path: the real trigger, Dovecot and real Airflow.

The trigger (``ReceiveEmailTrigger`` as an ``AssetWatcher`` runs it) takes what it emits
into the handed-over set; each event is read by a DAG run whose task calls
``fetch_claimed`` (``tests/dags/asset_after_receive_dags.py``, run with ``dag.test()``),
and ``move``/``delete`` happen only after that task succeeded. A triggerer killed between
its take and its event, a task killed before its read, after its success before the move
or delete, and after the move or delete before it was recorded: every message reaches
exactly one run, the mailbox ends as the mode says, and a message another client
flagged ``\\Deleted`` survives.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from imapclient import DELETED
from sqlalchemy import select

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.handover.engine import HandOver
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.airflow_runs import run_killed, task_result
from tests.dags import asset_after_receive_dags
from tests.dags.after_receive_dags import SEARCH
from tests.faults.injection import die, run_forked
from tests.test_mailbox_actions import mail
from tests.vendor_mailbox import INVOICES, LUNCH, deliver_invoices, expected_state, mailbox_state

FOREIGN = mail("Old", extra="Message-ID: <foreign@example.com>\r\n")
UNTOUCHED = {**LUNCH, "<foreign@example.com>": {DELETED}}
MOVE_TO = {"move": "Processed"}


@pytest.fixture
def inbox(dovecot: Dovecot) -> Iterator[Dovecot]:
    dovecot.clear("info")
    dovecot.deliver("info", [FOREIGN], flags=("\\Deleted",))  # another client's
    deliver_invoices(dovecot)
    yield dovecot
    dovecot.clear("info")


@pytest.fixture
def connect(
    airflow_db: object, mail_connection: ConnFactory, inbox: Dovecot, certificate: Certificate
) -> Callable[..., str]:
    """``connect(conn_id, protocol="imap")``: a connection to ``inbox``; each test takes its
    own, since the handed-over set and its pending mark are per connection."""

    def define(conn_id: str, protocol: str = "imap") -> str:
        return receive_connection(
            mail_connection, inbox, protocol, "ssl", certificate, conn_id=conn_id
        )

    return define


def watcher(conn_id: str, mode: str) -> ReceiveEmailTrigger:
    """The trigger as an AssetWatcher would hold it (taking what it emits)."""
    trigger = ReceiveEmailTrigger(
        conn_id,
        max_emails=2,
        delay=0.05,
        search=SEARCH,
        after_receive=mode,
        move_to=MOVE_TO.get(mode),
    )
    assert trigger.mark_seen  # the default for these modes: an AssetWatcher's trigger
    return trigger


class Life:
    """One life of a trigger in the triggerer: its events, one at a time."""

    def __init__(self, trigger: ReceiveEmailTrigger) -> None:
        self.loop = asyncio.new_event_loop()
        self.events = trigger.run()

    def next(self) -> dict[str, Any]:
        """The next event (asking for it also lets the previous one's release run)."""
        return dict(self.loop.run_until_complete(self.events.__anext__()).payload)

    def end(self) -> None:
        """Stop here, as a killed triggerer would: the last event's pending mark stays."""
        self.loop.run_until_complete(self.events.aclose())
        self.loop.close()


def run_dag(mode: str, conn_id: str, events: list[dict[str, Any]], when: Any = None) -> Any:
    dag = asset_after_receive_dags.DAGS[mode]
    kwargs = {} if when is None else {"logical_date": when, "run_after": when}
    return dag.test(run_conf={"conn_id": conn_id, "events": events}, **kwargs)


def read_result(mode: str, conn_id: str, events: list[dict[str, Any]]) -> list[str]:
    return list(task_result(run_dag(mode, conn_id, events), "read"))


@pytest.mark.parametrize("mode", ["leave_unread", "move", "delete"])
def test_each_mode_hands_over_once_and_acts_after_the_run(
    inbox: Dovecot, connect: Callable[..., str], mode: str
) -> None:
    conn_id = connect(f"asset_{mode}")
    life = Life(watcher(conn_id, mode))
    first = life.next()
    assert first["after_receive"] == mode and first["move_to"] == MOVE_TO.get(mode)
    assert read_result(mode, conn_id, [first]) == INVOICES[:2]
    second = life.next()
    assert read_result(mode, conn_id, [second]) == INVOICES[2:]
    life.end()  # the second event's pending mark stays: the next life repeats it
    again = Life(watcher(conn_id, mode))
    repeated = again.next()
    again.end()
    assert repeated["uids"] == second["uids"]
    assert read_result(mode, conn_id, [repeated]) == []  # a repeated event: no second run
    assert mailbox_state(inbox) == expected_state(mode, UNTOUCHED)


def _trigger_dies_after_its_take(conn_id: str, mode: str) -> None:
    watch = HandOver.watch

    def watch_then_die(handover: HandOver, poll: Any, *, recover_pending: bool) -> Any:
        claim = watch(handover, poll, recover_pending=recover_pending)
        if claim:
            die()  # taken and pending, the event not out
        return claim

    HandOver.watch = watch_then_die  # type: ignore[method-assign]
    Life(watcher(conn_id, mode)).next()


CRASH_RUN = """
import json, sys
from datetime import datetime
import tests.conftest  # the same Airflow home and DB as the test process
from tests.test_asset_after_receive import run_dag
run_dag(sys.argv[1], sys.argv[2], [json.loads(sys.argv[3])], datetime.fromisoformat(sys.argv[4]))
"""


def _last_run(dag_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())
        ).first()
        assert run is not None
        return SimpleNamespace(dag_id=run.dag_id, run_id=run.run_id)


@pytest.mark.parametrize(
    ("mode", "point"),
    [
        ("move", "before_fetch"),
        ("move", "before_action"),
        ("move", "after_action"),  # delete takes the same steps (a kill each costs ~10 s)
    ],
)
def test_a_kill_at_each_new_step_loses_and_repeats_nothing(
    inbox: Dovecot, connect: Callable[..., str], mode: str, point: str
) -> None:
    conn_id = connect(f"asset_kill_{mode}_{point}")
    # The triggerer dies after its take, before the event is out: the next life emits it.
    assert run_forked(_trigger_dies_after_its_take, conn_id, mode) == -signal.SIGKILL
    life = Life(watcher(conn_id, mode))
    first = life.next()
    assert len(first["uids"]) == 2

    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    run_killed(
        CRASH_RUN, mode, conn_id, json.dumps(first), when.isoformat(), point=point, timeout=300
    )
    if point == "before_fetch":
        delivered = list(task_result(run_dag(mode, conn_id, [first], when), "read"))  # retry
    else:
        # The killed run's task succeeded with these; nothing was lost meanwhile.
        delivered = list(task_result(_last_run(f"test_asset_after_receive_{mode}"), "read"))
        if point == "before_action":
            assert set(INVOICES) <= set(mailbox_state(inbox)["INBOX"])
    # The next event's run also settles what the killed run left owed.
    delivered += read_result(mode, conn_id, [life.next()])
    life.end()
    assert delivered == INVOICES
    assert mailbox_state(inbox) == expected_state(mode, UNTOUCHED)


def test_pop3_delete_after_the_run_and_move_refused(
    inbox: Dovecot, connect: Callable[..., str]
) -> None:
    conn_id = connect("pop3_asset_after_receive", "pop3")
    life = Life(watcher(conn_id, "delete"))
    first, second = life.next(), life.next()
    life.end()
    assert read_result("delete", conn_id, [first]) == INVOICES[:2]
    assert read_result("delete", conn_id, [second]) == INVOICES[2:]
    left = mailbox_state(inbox)
    assert sorted(left["INBOX"]) == ["<foreign@example.com>", "<lunch@example.com>"]
    refused = Life(watcher(conn_id, "move"))
    with pytest.raises(MailConfigError, match="'move' needs IMAP folders"):
        refused.next()
    refused.loop.close()
