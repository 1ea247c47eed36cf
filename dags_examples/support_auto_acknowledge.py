"""Auto-acknowledge: answer everyone who writes to the support inbox (POP3), RFC 3834 style.

Each run waits for mail not handed over before (POP3 remembers the unique ids it returned,
in an Airflow Variable), then acknowledges each sender once per period, in the thread of
their message (``In-Reply-To`` / ``References``), marked ``Auto-Submitted: auto-replied``.
It never answers machine-sent mail (the record's ``automatic`` field: other responders,
bounces, mailing lists, newsletters) nor its own address, so two auto-responders pointed
at each other exchange one message each and stop. Scheduled like the reference
integration: a run every 30 seconds at most, one at a time (not ``@continuous``, see
docs/deployment.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

DOC = """
### Support Auto-Acknowledge

Answers everyone who writes to the **support inbox** (POP3): "we received your message
and will answer within one working day", to the sender's Reply-To or From, in the thread
of their message, quoting the subject. A correct auto-responder (RFC 3834):

* each reply carries `Auto-Submitted: auto-replied` (and `X-Auto-Response-Suppress: All`
  for Exchange), so other responders do not answer it;
* machine-sent mail is never answered: the record's `automatic` field (Auto-Submitted,
  Precedence bulk/junk/list, List-Id, bounces, X-Autoreply), and subjects such as
  "Automatic reply:" or "Out of office" from responders that set no header;
* mail from the support address itself is never answered;
* each sender gets at most one acknowledgement per period (param `answer_once_per_hours`,
  default 7 days as RFC 3834 suggests). Who was answered when is kept in the Airflow
  Variable `support_auto_acknowledge/answered/<support address>` (`:` for `/` on Airflow
  3.0; a JSON object address -> time; entries older than the period are dropped). Delete
  it to answer everyone again.

**Connections:** `mail_pop3_default` (Receive Email, POP3) for the inbox and
`mail_smtp_default` (Send Email, SMTP) for the replies.

**How it runs:** unpause it, don't trigger it by hand. A run starts every 30 seconds at
most and one at a time; it waits in the triggerer until new mail arrives (checking every
30 s), answers up to 20 messages, and the next run starts. POP3 has no "seen" flag: the
provider remembers what it handed over in the Variable `mail_provider/pop3_seen/...`
(delete it to receive everything again).

**What to change:** the params' defaults (the support address, the period), the reply
text in `write_acknowledgements`.
"""

# Subjects of responders that set no Auto-Submitted header (old Outlook rules, some
# ticket systems); lower case, compared with the subject's start.
AUTOMATIC_SUBJECTS = ("auto", "automatic reply", "out of office", "undeliverable")
STATE_PREFIX = "support_auto_acknowledge/answered/"


def _address(text: str) -> str | None:
    """The first valid address of a header value, lower case; ``None`` when there is none."""
    # Imported here, when the task runs: every DAG-processor parse imports this file.
    from airflow_provider_mail.exceptions import InvalidAddressError
    from airflow_provider_mail.mail.addresses import parse_addresses

    try:
        parsed = parse_addresses([text]) if text else ()
    except InvalidAddressError:
        return None
    return parsed[0].addr_spec.lower() if parsed else None


def _within(entry: object, now: datetime, period: timedelta) -> bool:
    try:
        return now - datetime.fromisoformat(entry["at"]) < period  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return False  # an entry this DAG did not write: forget it


def choose_whom_to_answer(
    records: list[dict[str, Any]],
    own_address: str,
    answered: dict[str, dict[str, str]],
    now: datetime,
    period: timedelta,
    run_id: str,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """The replies to send and the new state: who was answered when (pure, for tests).

    ``answered`` maps an address to ``{"at": ISO time, "run_id": ...}``. An address this
    same run answered already stays answerable, so a retried task answers again what its
    first try chose (the send task has not run yet then).
    """
    from airflow_provider_mail.mail.replies import message_ids

    own = _address(own_address)
    state = {address: entry for address, entry in answered.items() if _within(entry, now, period)}
    replies = []
    for record in records:
        to = _address(record.get("reply_to") or "") or _address(record.get("from") or "")
        if to is None or to == own or record.get("automatic"):
            continue
        if str(record.get("subject", "")).strip().lower().startswith(AUTOMATIC_SUBJECTS):
            continue
        if _address(record.get("from") or "") == own:
            continue
        earlier = state.get(to)
        if earlier is not None and earlier.get("run_id") != run_id:
            continue
        if any(reply["to"] == to for reply in replies):
            continue
        state[to] = {"at": now.isoformat(), "run_id": run_id}
        # Only well-formed ids go into the thread: a stranger's odd Message-ID must not
        # stop the whole batch (every item is checked before anything is sent).
        own_id = message_ids(record.get("message_id") or "")[:1]
        thread = [*record.get("references", []), *own_id]
        replies.append(
            {
                "to": to,
                "subject": record.get("subject", ""),
                "from": record.get("from", ""),
                "in_reply_to": " ".join(own_id),
                "references": " ".join(one for text in thread for one in message_ids(text)),
            }
        )
    return replies, state


with DAG(
    dag_id="support_auto_acknowledge",
    description="Acknowledge new email of the support inbox (POP3), once per sender and period.",
    doc_md=DOC,
    schedule=timedelta(seconds=30),
    max_active_runs=1,
    catchup=False,
    tags=["mail", "example"],
    params={
        "pop3_conn_id": Param(
            "mail_pop3_default",
            type="string",
            title="POP3 connection",
            description="The mail_pop3 connection of the support inbox.",
        ),
        "smtp_conn_id": Param(
            "mail_smtp_default",
            type="string",
            title="SMTP connection",
            description="The mail_smtp connection that sends the acknowledgements.",
        ),
        "support_address": Param(
            "support@example.com",
            type="string",
            title="Support address",
            description="The inbox's own address: replies come from it, mail from it is "
            "never answered.",
        ),
        "answer_once_per_hours": Param(
            168,
            type="number",
            minimum=0,
            title="Answer each sender once per (hours)",
            description="A sender who wrote within this many hours of their last "
            "acknowledgement gets no second one (RFC 3834 suggests 7 days).",
        ),
    },
) as dag:
    new_requests = ReceiveEmailSensor(
        task_id="new_support_requests",
        conn_id="{{ params.pop3_conn_id }}",
        unseen_only=True,
        delay=30,
        max_emails=20,
        # A worker killed mid-hand-over: the retry delivers what that try had taken.
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    @task
    def skip_automatic_and_answered(
        records: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        # Airflow 3.0 refuses "/" in a Variable name: variable_key writes ":" there.
        from airflow_provider_mail.compat import variable_key

        assert params is not None  # Airflow passes the run's params and run_id
        own_address = str(params["support_address"])
        key = variable_key(STATE_PREFIX + own_address.lower())
        answered = Variable.get(key, default=None, deserialize_json=True) or {}
        replies, state = choose_whom_to_answer(
            records,
            own_address,
            answered,
            datetime.now(timezone.utc),
            timedelta(hours=float(params["answer_once_per_hours"])),
            str(run_id),
        )
        # Written before the replies go out: a crash in between loses an acknowledgement
        # rather than risking a second one (and with it, a loop).
        if state != answered:
            Variable.set(key, state, serialize_json=True)
        return replies

    acknowledgements = MapOperator(
        task_id="write_acknowledgements",
        source=skip_automatic_and_answered(new_requests.output),
        mapping={
            "to": "{{ to }}",
            "subject": "Re: {{ subject }}",
            "in_reply_to": "{{ in_reply_to }}",
            "references": "{{ references }}",
            "text": (
                "Hello {{ item['from'] | name or 'there' }},\n\n"
                'we received your message "{{ subject }}" and will answer within one '
                "working day.\n\nThe support team\n\n(This is an automatic reply.)"
            ),
        },
    )

    SendEmailOperator(
        task_id="send_acknowledgements",
        conn_id="{{ params.smtp_conn_id }}",
        from_email="Support <{{ params.support_address }}>",
        data=acknowledgements.output,
        parameter_priority="consumed_data",
        auto_submitted="auto-replied",
        headers={"X-Auto-Response-Suppress": "All"},
    )
