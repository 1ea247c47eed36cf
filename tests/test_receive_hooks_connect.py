"""ImapHook and Pop3Hook against real Dovecot: every security mode, every failure sentence."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from devtools.certs import Certificate, free_port
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot

HOOKS = {"imap": ImapHook, "pop3": Pop3Hook}
PROTOCOLS = ["imap", "pop3"]


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_validate_succeeds_in_every_security_mode(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    protocol: str,
    security: str,
) -> None:
    conn_id = receive_connection(mail_connection, dovecot, protocol, security, certificate)
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert ok, message
    assert f"({security})" in message
    assert "as 'info'" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_password_is_one_sentence_without_the_password(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, protocol: str
) -> None:
    conn_id = receive_connection(
        mail_connection, dovecot, protocol, "ssl", certificate, password="Wr0ng-Pa55word"
    )
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "rejected the user name 'info' or its password" in message
    assert "Wr0ng-Pa55word" not in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_self_signed_certificate_without_pasted_certificate_is_untrusted(
    mail_connection: ConnFactory, dovecot: Dovecot, protocol: str
) -> None:
    conn_id = receive_connection(mail_connection, dovecot, protocol, "ssl", None)
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "is not trusted" in message
    assert "Server Certificate" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_starttls_with_untrusted_certificate_never_logs_in(
    mail_connection: ConnFactory, dovecot: Dovecot, other_certificate: Certificate, protocol: str
) -> None:
    conn_id = receive_connection(mail_connection, dovecot, protocol, "starttls", other_certificate)
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "is not trusted" in message
    assert "does not match" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_host_name_mismatch(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, protocol: str
) -> None:
    conn_id = receive_connection(
        mail_connection, dovecot, protocol, "ssl", certificate, host="127.0.0.1"
    )
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "is not valid for the host name '127.0.0.1'" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_starttls_not_offered_fails_instead_of_plain_text(
    mail_connection: ConnFactory, dovecot_no_tls: Dovecot, protocol: str
) -> None:
    conn_id = receive_connection(mail_connection, dovecot_no_tls, protocol, "starttls", None)
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "does not offer STARTTLS" in message
    assert "nothing was sent in plain text" in message
    log = dovecot_no_tls.log_path.read_text()
    assert "user=<info>" not in log.split("\n")[-5:], "credentials must not be tried"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_refused(mail_connection: ConnFactory, protocol: str) -> None:
    conn_id = mail_connection(
        "refused", f"mail_{protocol}", port=free_port(), login="info", password="x", security="none"
    )
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "was refused" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_host(mail_connection: ConnFactory, protocol: str) -> None:
    conn_id = mail_connection(
        "unknown", f"mail_{protocol}", host="no-such-host.invalid", security="ssl"
    )
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "'no-such-host.invalid' could not be resolved" in message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    server.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout(mail_connection: ConnFactory, silent_port: int, protocol: str) -> None:
    conn_id = mail_connection(
        "silent", f"mail_{protocol}", port=silent_port, security="none", timeout=1
    )
    ok, message = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    assert "did not answer within 1 seconds" in message


def test_hook_is_a_context_manager_holding_one_session(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        first = hook.client
        first.noop()
        assert hook.client is first
    assert hook._client is None
