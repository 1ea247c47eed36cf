"""Merge the Send Email step's input values with one consumed-data item."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from airflow_provider_mail.exceptions import MailConfigError

#: The fields an email is built from, as keys of the operator's input values and of
#: consumed-data items.
EMAIL_FIELDS: tuple[str, ...] = (
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "text",
    "html",
    "reply_to",
    "attachments",
    "in_reply_to",
    "references",
    "headers",
    "auto_submitted",
)


class ParameterPriority(str, Enum):
    """Which side wins when both the operator and the consumed data set a field."""

    INPUT_VALUES = "input_values"
    CONSUMED_DATA = "consumed_data"

    @classmethod
    def parse(cls, value: object) -> ParameterPriority:
        """Read ``parameter_priority``; anything but the two known values is an error."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise MailConfigError(
                f"parameter_priority {value!r} is not known; choose 'input_values' or "
                "'consumed_data'."
            ) from None


def is_empty(value: object) -> bool:
    """``None``, a blank string and an empty list count as "not set"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(is_empty(element) for element in value)
    return False


def merge_fields(
    input_values: Mapping[str, Any],
    consumed: Mapping[str, Any] | None,
    priority: ParameterPriority | str = ParameterPriority.INPUT_VALUES,
) -> dict[str, Any]:
    """The value of every email field after applying ``priority``.

    The winning side's value is used when it is set; otherwise the other side's. Keys that
    are not email fields are ignored (see :func:`unknown_keys`). ``headers`` dicts of both
    sides are merged name by name (names compared without case), the winning side's value
    taking precedence.

    >>> merge_fields({"subject": "Hello"}, {"subject": "Hi"}, "consumed_data")["subject"]
    'Hi'
    >>> merge_fields({"subject": "Hello"}, {"subject": ""}, "consumed_data")["subject"]
    'Hello'
    """
    winner_is_data = ParameterPriority.parse(priority) is ParameterPriority.CONSUMED_DATA
    data = consumed or {}
    first, second = (data, input_values) if winner_is_data else (input_values, data)
    merged: dict[str, Any] = {}
    for field in EMAIL_FIELDS:
        value = first.get(field)
        merged[field] = value if not is_empty(value) else second.get(field)
    headers = [side.get("headers") for side in (second, first)]
    if all(isinstance(side, Mapping) for side in headers):
        combined: dict[str, Any] = {}
        for side in headers:
            for name, value in side.items():  # type: ignore[union-attr]
                known = [k for k in combined if str(k).lower() == str(name).lower()]
                if known and is_empty(value):
                    continue  # empty on the winning side: the other side's value stays
                for key in known:
                    del combined[key]
                combined[name] = value
        merged["headers"] = combined
    return merged


def unknown_keys(consumed: Mapping[str, Any]) -> list[str]:
    """Keys of a consumed-data item that are not email fields (they are not used)."""
    return sorted(str(key) for key in consumed if key not in EMAIL_FIELDS)
