"""Errors keep their type across the triggerer: the task raises what the trigger reported.

The trigger runs against real Dovecot; its event goes through the sensor's
``execute_complete`` as it would after the triggerer hands it to a worker.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailAuthError, MailConnectionError, MailError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot


def first_event(trigger: ReceiveEmailTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(events.__anext__(), timeout=60)
        finally:
            await events.aclose()
        # What reaches the worker went through the triggerer's JSON serialisation.
        payload: dict[str, Any] = json.loads(json.dumps(event.payload))
        return payload

    return asyncio.run(run())


def sensor_error(conn_id: str, event: dict[str, Any]) -> MailError:
    sensor = ReceiveEmailSensor(task_id="obtain", conn_id=conn_id, unseen_only=True)
    with pytest.raises(MailError) as raised:
        sensor.execute_complete({}, event)
    return raised.value


def test_wrong_password_reaches_the_task_as_mail_auth_error_with_the_same_sentence(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(
        mail_connection, dovecot, "imap", "ssl", certificate, password="wrong"
    )
    with pytest.raises(MailAuthError) as direct, ImapHook(conn_id) as hook:
        hook.find_new(None, unseen_only=True, max_emails=5)

    # The sensor's trigger (mark_seen=False): it reports errors to the task as events.
    trigger = ReceiveEmailTrigger(conn_id=conn_id, unseen_only=True, mark_seen=False, delay=1)
    event = first_event(trigger)
    error = sensor_error(conn_id, event)

    assert type(error) is MailAuthError
    assert str(error) == str(direct.value)
    assert "wrong" not in str(error)


def test_refused_port_reaches_the_task_as_mail_connection_error(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate, port=1)
    trigger = ReceiveEmailTrigger(
        conn_id=conn_id, unseen_only=True, mark_seen=False, delay=0.1, max_failures=1
    )
    error = sensor_error(conn_id, first_event(trigger))
    assert type(error) is MailConnectionError
    assert "refused" in str(error)


def test_unknown_error_name_is_a_plain_mail_error() -> None:
    error = sensor_error("c", {"status": "error", "error": "KeyError", "message": "Broke."})
    assert type(error) is MailError
    assert str(error) == "Broke."
