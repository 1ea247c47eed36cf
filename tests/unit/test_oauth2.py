"""The pure part of OAuth sign-in and the token cache's rules, without any server."""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.hooks.oauth2 import TokenCache
from airflow_provider_mail.mail.oauth2 import (
    ASSUMED_LIFETIME,
    AccessToken,
    OAuth2Credentials,
    choose_mechanism,
    classify_client_error,
    credentials_from_extra,
    describe_token_error,
    oauthbearer_string,
    scrub,
    token_from_response,
    xoauth2_string,
)
from airflow_provider_mail.mail.settings import settings_from_connection

EXTRA = {
    "auth_type": "oauth2",
    "oauth2_token_url": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
    "oauth2_client_id": "app-1",
    "oauth2_client_secret": "s3cret-Value",
    "oauth2_scope": "  https://outlook.office365.com/.default  ",
}
CREDENTIALS = OAuth2Credentials(
    "https://login.example.com/token", "app-1", "s3cret-Value", "", "mail"
)


def test_password_is_the_default_and_oauth2_reads_the_fields() -> None:
    assert credentials_from_extra("c", "info@x", {}) is None
    assert credentials_from_extra("c", "info@x", {"auth_type": "password"}) is None
    credentials = credentials_from_extra("c", "info@x", EXTRA)
    assert credentials is not None
    assert credentials.grant == "client_credentials"
    assert credentials.scope == "https://outlook.office365.com/.default"
    assert credentials.endpoint_host == "login.microsoftonline.com"
    refresh = credentials_from_extra("c", "u", {**EXTRA, "oauth2_refresh_token": "rt-1"})
    assert refresh is not None and refresh.grant == "refresh_token"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"auth_type": "kerberos"}, "choose password or oauth2"),
        ({"oauth2_token_url": ""}, "is not an http(s) URL"),
        ({"oauth2_token_url": "http://login.example.com/token"}, "without TLS"),
        ({"oauth2_client_id": " "}, "has no Client ID"),
        ({"oauth2_client_secret": ""}, "needs a Client Secret"),
    ],
)
def test_configuration_mistakes_are_one_sentence(change: dict[str, str], words: str) -> None:
    with pytest.raises(MailConfigError, match=r"^Connection 'c' .*\.$") as raised:
        credentials_from_extra("c", "info@x", {**EXTRA, **change})
    assert words in str(raised.value)
    assert "s3cret-Value" not in str(raised.value)


def test_oauth2_needs_the_mailbox_as_user_name() -> None:
    with pytest.raises(MailConfigError, match="has no User Name"):
        credentials_from_extra("c", "", EXTRA)


def test_loopback_token_url_may_be_plain_http() -> None:
    local = {**EXTRA, "oauth2_token_url": "http://127.0.0.1:8080/token"}
    assert credentials_from_extra("c", "u", local) is not None


def test_secrets_stay_out_of_repr() -> None:
    settings = settings_from_connection(
        "imap",
        conn_id="c",
        host="outlook.office365.com",
        port=None,
        login="info@x",
        password=None,
        extra={**EXTRA, "oauth2_refresh_token": "rt-Secret-9"},
    )
    shown = repr(settings) + repr(AccessToken("at-Secret-7", 0.0, 60.0))
    for secret in ("s3cret-Value", "rt-Secret-9", "at-Secret-7"):
        assert secret not in shown
    assert settings.oauth2 is not None and settings.oauth2.cache_key("info@x") not in shown


def test_a_token_is_renewed_when_a_fifth_of_its_life_is_left() -> None:
    token = token_from_response({"access_token": "a", "expires_in": 3600}, 100.0, 0.0)
    assert token.renew_at == 100.0 + 2880.0
    assert token.usable(2979.0) and not token.usable(2980.0)
    short = token_from_response({"access_token": "a", "expires_in": "5"}, 0.0, 0.0)
    assert short.usable(3.9) and not short.usable(4.0)  # even a 5 s token is reused


def test_lifetime_from_expires_at_or_assumed() -> None:
    at = token_from_response({"access_token": "a", "expires_at": 1_000_600}, 0.0, 1_000_000.0)
    assert at.lifetime == 600
    assert token_from_response({"access_token": "a"}, 0.0, 0.0).lifetime == ASSUMED_LIFETIME
    bad = token_from_response({"access_token": "a", "expires_in": "soon"}, 0.0, 0.0)
    assert bad.lifetime == ASSUMED_LIFETIME


def test_sasl_strings() -> None:
    assert xoauth2_string("info@x.com", "tok") == "user=info@x.com\x01auth=Bearer tok\x01\x01"
    # Google's documented example of the encoded XOAUTH2 string.
    google = base64.b64encode(
        xoauth2_string(
            "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        ).encode()
    )
    assert google == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk"
        b"SFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    assert oauthbearer_string("a,b=c@x", "tok", "imap.x", 993) == (
        "n,a=a=2Cb=3Dc@x,\x01host=imap.x\x01port=993\x01auth=Bearer tok\x01\x01"
    )


def test_mechanism_choice() -> None:
    assert choose_mechanism(["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"]) == "XOAUTH2"
    assert choose_mechanism(["plain", "oauthbearer"]) == "OAUTHBEARER"
    assert choose_mechanism(["PLAIN", "LOGIN"]) is None


@pytest.mark.parametrize(
    ("description", "kind"),
    [
        (
            "AADSTS700016: Application with identifier 'x' was not found in the directory",
            "unknown_client",
        ),
        ("The OAuth client was not found.", "unknown_client"),
        ("AADSTS7000215: Invalid client secret provided.", "wrong_secret"),
        ("AADSTS7000222: The provided client secret keys for app 'x' are expired.", "wrong_secret"),
        ("Unauthorized", "wrong_secret"),
        ("Client authentication failed.", None),
    ],
)
def test_invalid_client_answers_of_microsoft_and_google(description: str, kind: str | None) -> None:
    assert classify_client_error(description) == kind


def test_token_endpoint_errors_are_one_sentence_without_secrets() -> None:
    refresh = OAuth2Credentials("https://oauth2.googleapis.com/token", "app", "sec-1", "rt-2", "")
    revoked = describe_token_error(refresh, "invalid_grant", "Token has been expired or revoked.")
    assert "sign in again and paste the new refresh token" in str(revoked)
    echoed = describe_token_error(refresh, "server_error", "bad refresh token rt-2 for sec-1")
    assert "rt-2" not in str(echoed) and "sec-1" not in str(echoed)
    assert str(echoed).endswith("check the connection's OAuth fields.")
    grant = describe_token_error(CREDENTIALS, "unauthorized_client", "not allowed")
    assert "may not use the client_credentials grant" in str(grant)
    assert scrub("a sec-1 b", ["sec-1", ""]) == "a *** b"


class Endpoint:
    """A stand-in token request that counts calls and can rotate refresh tokens."""

    def __init__(self, lifetime: float = 60.0, rotate: bool = False) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime
        self.rotate = rotate
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, credentials: OAuth2Credentials, timeout: float) -> Mapping[str, Any]:
        self.gate.wait()
        self.calls.append(credentials.refresh_token)
        answer: dict[str, Any] = {
            "access_token": f"at-{len(self.calls)}",
            "expires_in": self.lifetime,
        }
        if self.rotate:
            answer["refresh_token"] = f"rt-{len(self.calls)}"
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_shares_one_fetch_between_concurrent_callers() -> None:
    endpoint = Endpoint()
    endpoint.gate.clear()
    cache = TokenCache(endpoint, Clock())
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(CREDENTIALS, "info", 5).value))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    endpoint.gate.set()
    for thread in threads:
        thread.join()
    assert got == ["at-1"] * 8
    assert len(endpoint.calls) == 1


def test_cache_keys_by_account_and_credentials() -> None:
    endpoint = Endpoint()
    cache = TokenCache(endpoint, Clock())
    cache.get(CREDENTIALS, "info", 5)
    cache.get(CREDENTIALS, "info", 5)
    cache.get(CREDENTIALS, "sales", 5)
    other_scope = OAuth2Credentials(CREDENTIALS.token_url, "app-1", "s3cret-Value", "", "x")
    cache.get(other_scope, "info", 5)
    assert len(endpoint.calls) == 3


def test_cache_renews_after_four_fifths_and_discards_only_the_refused_token() -> None:
    endpoint = Endpoint(lifetime=10.0)
    clock = Clock()
    cache = TokenCache(endpoint, clock)
    first = cache.get(CREDENTIALS, "info", 5)
    clock.now = 7.9
    assert cache.get(CREDENTIALS, "info", 5) is first
    clock.now = 8.0
    second = cache.get(CREDENTIALS, "info", 5)
    assert second.value == "at-2"
    cache.discard(CREDENTIALS, "info", first)  # stale: another session replaced it already
    assert cache.get(CREDENTIALS, "info", 5) is second
    cache.discard(CREDENTIALS, "info", second)
    assert cache.get(CREDENTIALS, "info", 5).value == "at-3"


def test_cache_uses_a_rotated_refresh_token_for_the_next_refresh() -> None:
    endpoint = Endpoint(lifetime=10.0, rotate=True)
    clock = Clock()
    cache = TokenCache(endpoint, clock)
    credentials = OAuth2Credentials(CREDENTIALS.token_url, "app", "sec", "rt-pasted", "mail")
    cache.get(credentials, "info", 5)
    clock.now = 9.0
    cache.get(credentials, "info", 5)
    clock.now = 18.0
    cache.get(credentials, "info", 5)
    assert endpoint.calls == ["rt-pasted", "rt-1", "rt-2"]
