"""The deployments' connection variables: the port and security each protocol uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.certs import Certificate
from devtools.connections import mailbox_connection_variable, smtp_connection_variable
from devtools.dovecot import Dovecot
from devtools.smtp import SMTP_PASSWORD, SMTP_USER, SmtpServer

CERTIFICATE = Certificate(Path("cert.pem"), Path("key.pem"), pem="-----PEM-----")


@pytest.mark.parametrize(("protocol", "port"), [("imap", 993), ("pop3", 995)])
def test_mailbox_variable_uses_the_implicit_tls_port(protocol: str, port: int) -> None:
    server = Dovecot(Path("unused"), None, users={"info": "pw"}, imaps_port=993, pop3s_port=995)
    name, value = mailbox_connection_variable("box", server, protocol, "info", CERTIFICATE)
    assert name == "AIRFLOW_CONN_BOX"
    assert json.loads(value) == {
        "conn_type": f"mail_{protocol}",
        "host": "localhost",
        "port": port,
        "login": "info",
        "password": "pw",
        "extra": {"security": "ssl", "server_certificate": "-----PEM-----", "timeout": 10},
    }


def test_smtp_variable_uses_the_servers_security_and_the_test_user() -> None:
    server = SmtpServer("no_starttls", CERTIFICATE)
    name, value = smtp_connection_variable("mail_smtp_default", server, CERTIFICATE)
    assert name == "AIRFLOW_CONN_MAIL_SMTP_DEFAULT"
    assert json.loads(value) == {
        "conn_type": "mail_smtp",
        "host": "localhost",
        "port": server.port,
        "login": SMTP_USER,
        "password": SMTP_PASSWORD,
        "extra": {"security": "starttls", "server_certificate": "-----PEM-----", "timeout": 10},
    }
