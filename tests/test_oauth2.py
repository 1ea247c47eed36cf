"""OAuth 2.0 sign-in against real servers: the test token endpoint, Dovecot's ``oauth2``
passdb (IMAP, POP3) and aiosmtpd with an ``auth_XOAUTH2`` handler (SMTP)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.hooks.base import MailHook
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.hooks.smtp import SmtpHook
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import free_port
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from devtools.oauth_smtp import OAuthSmtpServer
from devtools.token_endpoint import TokenEndpoint
from tests.airflow_runs import run_dag, task_result, task_states
from tests.dags import receive_dags
from tests.oauth_fixtures import CLIENT_SECRET, MAILBOX, OAuthConnFactory

HOOKS: dict[str, type[MailHook[Any]]] = {"imap": ImapHook, "pop3": Pop3Hook, "smtp": SmtpHook}
GRANTS = ["client_credentials", "refresh_token"]


def message(subject: str = "Hello") -> EmailMessage:
    email = EmailMessage()
    email["From"] = "info@example.com"
    email["To"] = "lead@example.org"
    email["Subject"] = subject
    email.set_content("Hi.\n")
    return email


def secrets_of(endpoint: TokenEndpoint) -> list[str]:
    """Every value that must never be shown: the client secret, refresh and access tokens."""
    return [CLIENT_SECRET, *endpoint.refresh_tokens, *endpoint.tokens]


def wait_until(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.mark.parametrize("grant", GRANTS)
@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_each_protocol_signs_in_with_each_grant(
    airflow_db: object,
    oauth_connection: OAuthConnFactory,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    oauth_smtp_server: OAuthSmtpServer,
    protocol: str,
    grant: str,
) -> None:
    conn_id = oauth_connection(protocol, grant)
    ok, said = HOOKS[protocol](conn_id).test_connection()
    assert ok, said
    assert f"as 'info' (OAuth 2.0, {grant} grant)" in said
    assert oauth.requests[f"token:{grant}"] == 1

    if protocol == "smtp":
        [result] = SmtpHook(conn_id).send([message()])
        assert result["to"] == ["lead@example.org"]
        assert [m.parsed()["Subject"] for m in oauth_smtp_server.messages] == ["Hello"]
        assert oauth_smtp_server.recorder.logins == ["XOAUTH2:info", "XOAUTH2:info"]
    else:
        oauth_dovecot.deliver(MAILBOX, numbered(2))
        hook = HOOKS[protocol](conn_id)
        assert isinstance(hook, (ImapHook, Pop3Hook))
        records = hook.receive(unseen_only=True)
        assert [r["subject"] for r in records] == ["Lead 0", "Lead 1"]
        assert "method=XOAUTH2" in oauth_dovecot.log_path.read_text()
    # Both sessions of the test used the one token.
    assert oauth.issued == 1


def test_one_token_for_many_concurrent_sessions(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint
) -> None:
    imap = oauth_connection("imap")
    smtp = oauth_connection("smtp")
    hooks: list[MailHook[Any]] = [ImapHook(imap) for _ in range(6)] + [
        SmtpHook(smtp) for _ in range(2)
    ]
    start = threading.Barrier(len(hooks))
    failures: list[BaseException] = []

    def open_session(hook: MailHook[Any]) -> None:
        start.wait()
        try:
            with hook:
                pass
        except BaseException as err:  # pragma: no cover - reported below
            failures.append(err)

    threads = [threading.Thread(target=open_session, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert oauth.issued == 1
    assert oauth.requests["token:client_credentials"] == 1


class Clock:
    """The token cache's clock, moved by the test (the server's tokens live an hour)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from airflow_provider_mail.hooks import oauth2

    clock = Clock()
    monkeypatch.setattr(oauth2.TOKENS, "_clock", clock)
    return clock


@pytest.mark.parametrize("grant", GRANTS)
def test_a_token_near_its_end_is_replaced(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint, clock: Clock, grant: str
) -> None:
    oauth.lifetime = 100.0
    conn_id = oauth_connection("imap", grant)
    assert ImapHook(conn_id).test_connection()[0]
    clock.now += 79.0
    assert ImapHook(conn_id).test_connection()[0]
    assert oauth.issued == 1  # reused while a fifth of its life is left
    clock.now += 1.0
    assert ImapHook(conn_id).test_connection()[0]
    assert oauth.issued == 2


def test_a_token_the_server_refuses_is_replaced_once(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint, oauth_dovecot: Dovecot
) -> None:
    conn_id = oauth_connection("pop3")
    assert Pop3Hook(conn_id).test_connection()[0]
    oauth.expire_all()  # revoked on the server's side; the cache still trusts it
    ok, said = Pop3Hook(conn_id).test_connection()
    assert ok, said
    assert oauth.issued == 2


def test_both_ways_of_client_authentication_work_and_the_working_one_is_kept(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint
) -> None:
    basic = oauth_connection(
        "smtp", oauth2_client_id="basic-app", oauth2_client_secret="basic-Secret-4242"
    )
    form = oauth_connection(
        "imap",
        oauth2_client_id="form-app",
        oauth2_client_secret="form-Secret-4343",
        oauth2_token_url=oauth.token_url + "?tenant=2",  # another URL: learnt on its own
    )
    assert SmtpHook(basic).test_connection()[0]
    assert ImapHook(form).test_connection()[0]
    # Form fields first: the Basic-only client needed a second try, the form client not.
    assert oauth.requests["token:client_credentials"] == 3
    from airflow_provider_mail.hooks import oauth2

    oauth2.TOKENS.clear()
    assert SmtpHook(basic).test_connection()[0]
    assert oauth.requests["token:client_credentials"] == 4  # Basic straight away


def test_a_rotated_refresh_token_is_used_for_the_next_refresh(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint, clock: Clock
) -> None:
    oauth.rotate_refresh_tokens = True
    oauth.lifetime = 100.0
    conn_id = oauth_connection("imap", "refresh_token")
    pasted = next(reversed(oauth.refresh_tokens))
    assert ImapHook(conn_id).test_connection()[0]
    oauth.revoke(pasted)  # a provider that accepts each refresh token once
    clock.now += 80.0
    ok, said = ImapHook(conn_id).test_connection()
    assert ok, said
    assert oauth.requests["token:refresh_token"] == 2


def failure(conn_id: str, protocol: str = "imap") -> str:
    ok, said = HOOKS[protocol](conn_id).test_connection()
    assert not ok
    return said


def test_failure_sentences(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint, oauth_dovecot: Dovecot
) -> None:
    said = {
        "unreachable": failure(
            oauth_connection("imap", oauth2_token_url=f"http://127.0.0.1:{free_port()}/token")
        ),
        "not_oauth": failure(
            oauth_connection("imap", oauth2_token_url=oauth.base_url + "/oauth2/authorize")
        ),
        "unknown_client": failure(oauth_connection("imap", oauth2_client_id="no-such-app")),
        "wrong_secret": failure(oauth_connection("imap", oauth2_client_secret="old-Secret-1")),
        "wrong_mailbox": failure(oauth_connection("pop3", login="support"), "pop3"),
        "no_mail_scope": failure(oauth_connection("smtp", oauth2_scope="openid"), "smtp"),
    }
    revoked = oauth_connection("imap", "refresh_token", conn_id="revoked")
    for token in list(oauth.refresh_tokens):
        oauth.revoke(token)
    said["revoked"] = failure(revoked)

    assert said["unreachable"] == (
        "The token endpoint 127.0.0.1 could not be reached (connection refused); check the "
        "Token URL and that this machine may connect to it."
    )
    assert said["not_oauth"].startswith(
        "127.0.0.1 did not answer like an OAuth 2.0 token endpoint (HTTP 404); check the Token URL"
    )
    assert said["unknown_client"] == (
        "The token endpoint 127.0.0.1 does not know the client id 'no-such-app'; check Client "
        "ID (for Microsoft 365 also the tenant in the Token URL)."
    )
    assert said["wrong_secret"] == (
        "The token endpoint 127.0.0.1 rejected the client secret of 'mail-app'; paste the "
        "current secret value (not its id; secrets expire) into Client Secret."
    )
    assert said["revoked"] == (
        "The token endpoint 127.0.0.1 says the refresh token has expired or was revoked; sign "
        "in again and paste the new refresh token into Refresh Token."
    )
    pop3 = f"localhost:{oauth_dovecot.pop3_port}"
    assert said["wrong_mailbox"] == (
        f"{pop3} refused the OAuth token for 'support'; check that User Name is a mailbox this "
        "app may use and that Scope grants POP access (see docs/oauth2.md)."
    )
    assert "refused the OAuth token for 'info'" in said["no_mail_scope"]
    assert "Scope grants SMTP access" in said["no_mail_scope"]
    for sentence in said.values():
        assert sentence.count(". ") == 0 and sentence.endswith("."), sentence
        for secret in [*secrets_of(oauth), "old-Secret-1"]:
            assert secret not in sentence


def test_configuration_mistakes_are_named_before_anything_is_sent(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint
) -> None:
    no_client = failure(oauth_connection("imap", oauth2_client_id=""))
    assert "has no Client ID" in no_client
    plain_http = failure(oauth_connection("imap", oauth2_token_url="http://login.example.com/t"))
    assert "Token URL without TLS" in plain_http
    assert oauth.requests.total() == 0


def test_secrets_stay_out_of_repr_and_trigger_kwargs(
    oauth_connection: OAuthConnFactory, oauth: TokenEndpoint
) -> None:
    conn_id = oauth_connection("imap", "refresh_token")
    hook = ImapHook(conn_id)
    with hook:
        shown = repr(hook.settings) + repr(hook._session_token)
    _path, kwargs = ReceiveEmailTrigger(conn_id).serialize()
    shown += repr(kwargs)
    for secret in secrets_of(oauth):
        assert secret not in shown
    assert oauth.issued == 1


def test_idle_session_signs_in_again_before_its_token_expires(
    oauth_connection: OAuthConnFactory,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Long enough that a busy machine still signs in before the server lets a token go.
    oauth.lifetime = 5.0
    conn_id = oauth_connection("imap")
    trigger = ReceiveEmailTrigger(conn_id, unseen_only=True, delay=30, use_idle=True)

    async def scenario() -> dict[str, Any]:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        # The IDLE session renews itself: a third token means two sign-ins after the first.
        await asyncio.to_thread(wait_until, lambda: oauth.issued >= 3)
        await asyncio.to_thread(oauth_dovecot.deliver, MAILBOX, numbered(1, "Pushed"))
        try:
            event = await asyncio.wait_for(waiting, timeout=30)
        finally:
            await events.aclose()
        return dict(event.payload)

    payload = asyncio.run(scenario())
    assert payload["status"] == "success" and len(payload["uids"]) == 1
    logs = "".join(capfd.readouterr())
    assert "the session's access token expires soon" in logs
    assert "IDLE on" not in logs and "failed" not in logs.lower()


def test_deferred_sensor_keeps_polling_across_token_renewals(
    airflow_db: object,
    oauth_connection: OAuthConnFactory,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The triggerer's shared poll session signs in afresh; no poll fails meanwhile."""
    oauth.lifetime = 4.0
    conn_id = oauth_connection("imap", "refresh_token")

    def deliver_after_two_renewals() -> None:
        wait_until(lambda: oauth.issued >= 3)
        oauth_dovecot.deliver(MAILBOX, numbered(1, "Late"))

    late = threading.Thread(target=deliver_after_two_renewals)
    late.start()
    try:
        run = run_dag(receive_dags.receive_unseen_deferrable, conn_id=conn_id, folder="")
    finally:
        late.join()
    assert task_result(run, "collect") == ["Late 0"]
    logs = "".join(capfd.readouterr())
    assert "the session's access token expires soon" in logs
    assert "Poll 1 of" not in logs
    for secret in secrets_of(oauth):
        assert secret not in logs


def test_reference_integration_runs_with_imap_and_smtp_on_oauth2(
    airflow_db: Path,
    oauth_connection: OAuthConnFactory,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    oauth_smtp_server: OAuthSmtpServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """ "Obtain Info Emails" (IMAP, refresh-token grant) -> map -> "Send Emails to Leads"
    (SMTP, client-credentials grant); no secret in the logs, XCom or trigger kwargs."""
    from tests.test_examples_end_to_end import HTML_ONLY, INQUIRY, example

    conf = {
        "imap_conn_id": oauth_connection("imap", "refresh_token"),
        "smtp_conn_id": oauth_connection("smtp", "client_credentials"),
        "leads_email": "sales-team@example.com",
    }
    oauth_dovecot.deliver(MAILBOX, [INQUIRY, HTML_ONLY])
    run = example("obtain_info_emails_to_leads").test(run_conf=conf)

    assert set(task_states(run).values()) == {"success"}
    sent = [m.parsed()["Subject"] for m in oauth_smtp_server.messages]
    assert sent == ["New lead: Preise für 2027", "New lead: Demo please"]
    assert oauth_smtp_server.recorder.logins == ["XOAUTH2:info"]
    # One token per credentials: the IMAP one served the trigger and the resumed task.
    assert oauth.requests["token:refresh_token"] == 1
    assert oauth.requests["token:client_credentials"] == 1

    shown = "".join(capfd.readouterr())
    for path in (airflow_db / "logs").rglob("*"):
        if path.is_file():
            shown += path.read_text(errors="replace")
    assert "Sent 2 email(s)" in shown  # the task logs were captured
    for task_id in task_states(run):
        shown += json.dumps(task_result(run, task_id))
    for secret in secrets_of(oauth):
        assert secret not in shown


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_oauthbearer_signs_in_and_is_refused_cleanly(
    airflow_db: Path,
    oauth_connection: OAuthConnFactory,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    oauth_smtp_server: OAuthSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    """RFC 7628 on the wire: the servers offer both, the client is made to prefer OAUTHBEARER
    (as it does when that is all a server offers)."""
    from airflow_provider_mail.hooks import oauth2

    monkeypatch.setattr(
        oauth2,
        "choose_mechanism",
        lambda offered: "OAUTHBEARER" if "OAUTHBEARER" in offered else None,
    )
    ok, said = HOOKS[protocol](oauth_connection(protocol)).test_connection()
    assert ok, said
    refused = failure(oauth_connection(protocol, login="support", conn_id="wrong"), protocol)
    assert "refused the OAuth token for 'support'" in refused
    if protocol == "smtp":
        assert oauth_smtp_server.recorder.logins == ["OAUTHBEARER:info"]
    else:
        assert "method=OAUTHBEARER" in oauth_dovecot.log_path.read_text()
