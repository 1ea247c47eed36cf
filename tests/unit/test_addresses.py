"""Address parsing, validation and the mapper's address filters (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_mail.exceptions import InvalidAddressError
from airflow_provider_mail.mail.addresses import (
    AddressList,
    address_filter,
    addresses_filter,
    name_filter,
    parse_addresses,
    parse_single_address,
    unique_addr_specs,
)


def specs(value: object) -> list[str]:
    return [address.addr_spec for address in parse_addresses(value)]  # type: ignore[arg-type]


def test_comma_separated_string() -> None:
    assert specs("a@example.com, Bob <b@example.org>") == ["a@example.com", "b@example.org"]


def test_quoted_display_name_with_comma_is_one_address() -> None:
    (address,) = parse_addresses('"Doe, Jane" <jane@example.com>')
    assert address.display_name == "Doe, Jane"
    assert address.addr_spec == "jane@example.com"


def test_list_of_strings_each_may_hold_several() -> None:
    assert specs(["a@example.com", "b@example.com, c@example.com"]) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


@pytest.mark.parametrize("value", [None, "", "   ", [], ["", "  "]])
def test_empty_values_give_no_address(value: object) -> None:
    assert parse_addresses(value) == ()  # type: ignore[arg-type]


def test_encoded_display_name_is_decoded() -> None:
    (address,) = parse_addresses("=?utf-8?q?J=C3=B6rg?= <j@example.com>")
    assert address.display_name == "Jörg"


@pytest.mark.parametrize(
    ("value", "offending"),
    [
        ("not an address", "not an address"),
        ("foo@", "foo@"),
        ("@example.com", "@example.com"),
        ("a@b@example.com", "a@b@example.com"),
        ("jane@example..com", "jane@example..com"),
        ("Jane <jane@example.com", "Jane <jane@example.com"),
        ("ok@example.com, broken@", "broken@"),
        ("jane", "jane"),
    ],
)
def test_invalid_addresses_are_refused_naming_the_culprit(value: str, offending: str) -> None:
    with pytest.raises(InvalidAddressError) as info:
        parse_addresses(value)
    assert offending in info.value.value


def test_single_address_refuses_two() -> None:
    with pytest.raises(InvalidAddressError):
        parse_single_address("a@example.com, b@example.com")
    assert parse_single_address("") is None
    address = parse_single_address("Sales <sales@example.com>")
    assert address is not None and address.domain == "example.com"


def test_unique_addr_specs_keeps_order_and_ignores_case() -> None:
    addresses = parse_addresses("a@example.com, B@example.com, A@EXAMPLE.COM, b@example.com")
    assert unique_addr_specs(addresses) == ("a@example.com", "B@example.com")


def test_address_filter() -> None:
    assert address_filter("Jane <j@x.org>") == "j@x.org"
    assert address_filter("j@x.org") == "j@x.org"
    assert address_filter('"Doe, Jane" <j@x.org>, k@y.org') == "j@x.org"
    assert address_filter(None) == ""


def test_address_filter_leaves_garbage_for_the_validator() -> None:
    assert address_filter("  no address here ") == "no address here"


def test_name_filter() -> None:
    assert name_filter("Jane <j@x.org>") == "Jane"
    assert name_filter('"Doe, Jane" <j@x.org>') == "Doe, Jane"
    assert name_filter("j@x.org") == ""
    assert name_filter("") == ""


def test_addresses_filter_is_a_list_that_renders_as_a_header() -> None:
    result = addresses_filter("Jane <j@x.org>, k@y.org")
    assert isinstance(result, AddressList)
    assert list(result) == ["j@x.org", "k@y.org"]
    assert str(result) == "j@x.org, k@y.org"
    assert addresses_filter(["a@x.org", "B <b@y.org>"]) == ["a@x.org", "b@y.org"]
    assert addresses_filter(None) == []
