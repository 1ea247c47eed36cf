"""A long-lived IMAP session (the trigger's) sees new mail at once and does not grow."""

from __future__ import annotations

from airflow_provider_mail.hooks.imap import ImapHook
from tests.conftest import ConnFactory, receive_connection
from tests.servers.certs import Certificate
from tests.servers.dovecot import Dovecot
from tests.test_receive_sensor import numbered


def test_kept_session_finds_mail_on_the_first_poll_after_it_arrives(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        assert not hook.find_new(None, unseen_only=True, max_emails=5)
        for round_ in range(1, 4):
            dovecot.deliver("info", numbered(1, f"Round {round_}"))
            assert len(hook.find_new(None, unseen_only=True, max_emails=5)) == round_


def test_unsolicited_server_replies_do_not_pile_up(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        for _ in range(30):
            dovecot.deliver("info", numbered(1))
            hook.find_new(None, unseen_only=True, max_emails=5)
        kept = hook.client._imap.untagged_responses
        assert sum(len(kept.get(key, [])) for key in ("EXISTS", "RECENT")) <= 4
