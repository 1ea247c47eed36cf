"""Connection settings, default ports and TLS contexts: pure logic, no server."""

from __future__ import annotations

import ssl

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail.settings import settings_from_connection
from airflow_provider_mail.mail.tls import Security, build_ssl_context, default_port
from devtools.certs import make_certificate


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [
        ("imap", "ssl", 993),
        ("imap", "starttls", 143),
        ("imap", "none", 143),
        ("pop3", "ssl", 995),
        ("pop3", "starttls", 110),
        ("pop3", "none", 110),
        ("smtp", "ssl", 465),
        ("smtp", "starttls", 587),
        ("smtp", "none", 25),
    ],
)
def test_empty_port_takes_the_default_of_the_security_method(
    protocol: str, security: str, port: int
) -> None:
    settings = settings_from_connection(
        protocol,
        conn_id="c",
        host="mail",
        port=None,
        login=None,
        password=None,
        extra={"security": security},
    )
    assert settings.port == port
    assert default_port(protocol, Security(security)) == port


def test_defaults_are_ssl_and_thirty_seconds() -> None:
    settings = settings_from_connection(
        "imap",
        conn_id="c",
        host=" mail.example.com ",
        port="",
        login=None,
        password=None,
        extra={},
    )
    assert settings.security is Security.SSL
    assert settings.port == 993
    assert settings.timeout == 30
    assert settings.host == "mail.example.com"
    assert settings.login == ""
    assert settings.claim_lock == "host"


def test_timeout_as_string_from_the_cli_is_read() -> None:
    settings = settings_from_connection(
        "smtp",
        conn_id="c",
        host="h",
        port=2525,
        login="u",
        password="p",
        extra={"timeout": "12", "security": "STARTTLS"},
    )
    assert settings.timeout == 12.0
    assert settings.security is Security.STARTTLS
    assert settings.port == 2525


def test_claim_lock_server_is_read_whatever_its_case() -> None:
    settings = settings_from_connection(
        "imap", conn_id="c", host="h", port=None, login="u", password="p",
        extra={"claim_lock": " Server "},
    )  # fmt: skip
    assert settings.claim_lock == "server"


def test_password_is_not_in_the_repr() -> None:
    settings = settings_from_connection(
        "smtp", conn_id="c", host="h", port=None, login="u", password="hunter22", extra={}
    )
    assert "hunter22" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"host": ""}, "has no Email Host Name"),
        ({"port": "abc"}, "is not a number"),
        ({"extra": {"security": "tls"}}, "Security Method 'tls' is not known"),
        ({"extra": {"timeout": "soon"}}, "is not a number of seconds"),
        ({"extra": {"timeout": 0}}, "positive number of seconds"),
        ({"extra": {"claim_lock": "cluster"}}, "claim_lock 'cluster'; use 'host'"),
    ],
)
def test_bad_settings_are_one_clear_sentence(fields: dict[str, object], phrase: str) -> None:
    values: dict[str, object] = {"host": "h", "port": None, "extra": {}}
    values.update(fields)
    with pytest.raises(MailConfigError, match=phrase):
        settings_from_connection(
            "imap",
            conn_id="c",
            host=values["host"],
            port=values["port"],  # type: ignore[arg-type]
            login=None,
            password=None,
            extra=values["extra"],  # type: ignore[arg-type]
        )


def test_tls_context_always_verifies_chain_and_host_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for pem in ("", make_certificate(tmp_path).pem):
        context = build_ssl_context(pem)
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True


def test_pasted_certificate_becomes_the_only_trust_anchor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_certificate(tmp_path)
    context = build_ssl_context(cert.pem)
    assert len(context.get_ca_certs()) == 1
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "localhost"),),)


@pytest.mark.parametrize(
    "pem", ["not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]
)
def test_garbage_certificate_is_a_config_error(pem: str) -> None:
    with pytest.raises(MailConfigError, match="Server Certificate"):
        build_ssl_context(pem)
