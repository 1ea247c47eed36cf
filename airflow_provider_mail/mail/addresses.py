"""Email addresses: parse and validate address lists, and the mapper's address filters.

Parsing uses the standard library's RFC 5322 header parser (``email.headerregistry``),
so quoted display names with commas (``"Doe, Jane" <jane@example.com>``), comments and
RFC 2047 encoded names are understood the way mail programs understand them.
"""

from __future__ import annotations

import email.errors
from collections.abc import Iterable
from email.headerregistry import Address
from email.policy import default as default_policy

from airflow_provider_mail.exceptions import InvalidAddressError

# Defects that do not make an address unusable: a non-ASCII local part is valid with
# SMTPUTF8, and obsolete syntax (such as a doubled comma) still names real mailboxes.
_HARMLESS_DEFECTS = (email.errors.NonASCIILocalPartDefect, email.errors.ObsoleteHeaderDefect)


class AddressList(list[str]):
    """A list of bare addresses that renders as ``a@x.org, b@y.org`` in a template.

    Returned by the ``addresses`` filter so that ``{{ to | addresses }}`` gives a usable
    header value while ``{% for a in to | addresses %}`` still iterates the addresses.
    """

    def __str__(self) -> str:
        return ", ".join(self)


def _header_addresses(text: str) -> tuple[tuple[Address, ...], bool]:
    """Parse one header value; return its addresses and whether it parsed cleanly."""
    try:
        header = default_policy.header_factory("To", text)
    except (email.errors.HeaderParseError, IndexError, ValueError):
        return (), False
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    clean = all(isinstance(defect, _HARMLESS_DEFECTS) for defect in header.defects)
    return addresses, clean


def _is_complete(address: Address) -> bool:
    return bool(address.username) and bool(address.domain)


def _pieces(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    pieces = []
    for item in items:
        if item is None:
            continue
        text = str(item).strip()
        if text:
            pieces.append(text)
    return pieces


def parse_addresses(value: str | Iterable[str] | None) -> tuple[Address, ...]:
    """Parse a comma-separated string or a list of addresses, strictly.

    >>> [a.addr_spec for a in parse_addresses('"Doe, Jane" <jane@example.com>, b@example.org')]
    ['jane@example.com', 'b@example.org']

    ``None``, empty strings and empty lists give an empty tuple. Raises
    :class:`InvalidAddressError` carrying the first text that is not a complete
    ``name@domain`` address.
    """
    result: list[Address] = []
    for piece in _pieces(value):
        addresses, clean = _header_addresses(piece)
        if not clean or not all(_is_complete(address) for address in addresses):
            raise InvalidAddressError(_first_invalid(piece))
        result.extend(addresses)
    return tuple(result)


def parse_single_address(value: str | Iterable[str] | None) -> Address | None:
    """Parse a value that must hold at most one address (such as ``from``).

    Returns ``None`` when the value is empty; raises :class:`InvalidAddressError` when it
    is invalid or holds more than one address.
    """
    addresses = parse_addresses(value)
    if len(addresses) > 1:
        raise InvalidAddressError(", ".join(str(address) for address in addresses))
    return addresses[0] if addresses else None


def _first_invalid(text: str) -> str:
    """The first comma-separated piece of ``text`` that fails on its own, for the message.

    Only used to word an error: commas inside quotes, angle brackets or comments do not
    split a piece.
    """
    current = ""
    for chunk in text.split(","):
        current = f"{current},{chunk}" if current else chunk
        balanced = (
            current.count('"') % 2 == 0
            and current.count("<") == current.count(">")
            and current.count("(") == current.count(")")
        )
        if not balanced:
            continue
        piece, current = current.strip(), ""
        if not piece:
            continue
        addresses, clean = _header_addresses(piece)
        if not clean or not addresses or not all(map(_is_complete, addresses)):
            return piece
    return current.strip() or text


def unique_addr_specs(addresses: Iterable[Address]) -> tuple[str, ...]:
    """Bare addresses in order, each once (compared without regard to case)."""
    seen: set[str] = set()
    result = []
    for address in addresses:
        spec = address.addr_spec
        if spec.lower() not in seen:
            seen.add(spec.lower())
            result.append(spec)
    return tuple(result)


def _lenient(value: object) -> tuple[Address, ...]:
    if value is None:
        return ()
    texts = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    result: list[Address] = []
    for text in texts:
        addresses, _ = _header_addresses(text)
        result.extend(address for address in addresses if _is_complete(address))
    return tuple(result)


def address_filter(value: object) -> str:
    """Mapper filter ``address``: the first bare address of a header value.

    ``{{ item["from"] | address }}`` turns ``Jane Doe <jane@example.com>`` into
    ``jane@example.com``. A value without any recognisable address is returned as it was
    (stripped), so that the Send Email step reports it as invalid instead of silently
    dropping it.
    """
    addresses = _lenient(value)
    if addresses:
        return addresses[0].addr_spec
    return "" if value is None else str(value).strip()


def name_filter(value: object) -> str:
    """Mapper filter ``name``: the display name of the first address, or ``""``.

    ``{{ item["from"] | name }}`` turns ``Jane Doe <jane@example.com>`` into ``Jane Doe``.
    """
    addresses = _lenient(value)
    return addresses[0].display_name if addresses else ""


def addresses_filter(value: object) -> AddressList:
    """Mapper filter ``addresses``: every bare address of a header value, as a list.

    ``{{ cc | addresses }}`` renders ``a@example.com, b@example.com``; the result is a list,
    so ``{{ (cc | addresses) | first }}`` and loops work too.
    """
    return AddressList(address.addr_spec for address in _lenient(value))
