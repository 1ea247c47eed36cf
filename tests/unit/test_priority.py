"""Merging input values with consumed data (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail.priority import (
    EMAIL_FIELDS,
    ParameterPriority,
    is_empty,
    merge_fields,
    unknown_keys,
)

INPUT = {"from": "op@example.com", "to": "op-to@example.com", "subject": "Operator subject"}
DATA = {"to": "data-to@example.com", "subject": "Data subject", "text": "Data text"}


def test_input_values_win_by_default() -> None:
    merged = merge_fields(INPUT, DATA)
    assert merged["to"] == "op-to@example.com"
    assert merged["subject"] == "Operator subject"
    assert merged["text"] == "Data text"
    assert merged["from"] == "op@example.com"


def test_consumed_data_wins_when_chosen() -> None:
    merged = merge_fields(INPUT, DATA, "consumed_data")
    assert merged["to"] == "data-to@example.com"
    assert merged["subject"] == "Data subject"
    assert merged["from"] == "op@example.com"


@pytest.mark.parametrize("empty", [None, "", "   ", [], ["", None]])
def test_empty_on_the_winning_side_falls_back(empty: object) -> None:
    merged = merge_fields(INPUT, {"subject": empty}, ParameterPriority.CONSUMED_DATA)
    assert merged["subject"] == "Operator subject"
    merged = merge_fields({"subject": empty}, DATA, ParameterPriority.INPUT_VALUES)
    assert merged["subject"] == "Data subject"


def test_every_field_is_present_and_only_those() -> None:
    merged = merge_fields({}, {"subject": "x", "message_id": "<1@x>"}, "consumed_data")
    assert tuple(merged) == EMAIL_FIELDS
    assert merged["html"] is None


def test_no_consumed_data() -> None:
    assert merge_fields(INPUT, None, "consumed_data")["subject"] == "Operator subject"


def test_unknown_priority_is_a_config_error_naming_the_parameter() -> None:
    with pytest.raises(MailConfigError, match="parameter_priority 'data_first'"):
        merge_fields(INPUT, DATA, "data_first")


def test_priority_is_read_tolerantly() -> None:
    assert ParameterPriority.parse(" Consumed_Data ") is ParameterPriority.CONSUMED_DATA


def test_unknown_keys() -> None:
    assert unknown_keys({"to": "a", "message_id": "b", "attachments": [], "size": 3}) == [
        "message_id",
        "size",
    ]


def test_is_empty() -> None:
    assert is_empty(" ")
    assert not is_empty(0)
    assert not is_empty(["a@example.com"])
