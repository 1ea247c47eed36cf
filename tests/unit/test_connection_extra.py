"""connection_extra: the extras as a dict, only the secret ones handed to the masker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_mail import masking


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(masking, "mask", calls.append)
    return calls


def test_password_connection_masks_nothing(masked: list[str]) -> None:
    connection = SimpleNamespace(extra='{"security": "ssl", "timeout": 30}')
    assert masking.connection_extra(connection) == {"security": "ssl", "timeout": 30}
    assert masked == []


def test_secret_extras_are_masked_one_by_one(masked: list[str]) -> None:
    connection = SimpleNamespace(
        extra={"auth_type": "oauth2", "oauth2_client_secret": "s3cr3t-value",
               "oauth2_refresh_token": "r3fr3sh-value", "oauth2_client_id": "app"}
    )  # fmt: skip
    assert masking.connection_extra(connection)["oauth2_client_id"] == "app"
    assert masked == ["s3cr3t-value", "r3fr3sh-value"]


@pytest.mark.parametrize("extra", [None, "", "not json", "[1, 2]"])
def test_missing_or_unreadable_extras_are_empty(extra: object, masked: list[str]) -> None:
    assert masking.connection_extra(SimpleNamespace(extra=extra)) == {}
