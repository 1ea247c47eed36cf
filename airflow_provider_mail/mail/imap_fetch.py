"""Read IMAP ``FETCH`` answers as imaplib returns them; the usual shapes quickly (pure).

imapclient's ``parse_fetch_response`` runs a tokenizer over every answer in Python: for a
backlog of 10,000 messages its share was a third of the floor's whole drain. The hooks
ask for few items (``UID``, ``RFC822.SIZE``, ``FLAGS``, ``MODSEQ`` and one literal at the
end, ``BODY[]<0>``); answers made only of those, in their plain forms, are read here with
a few regular expressions. Any other answer (a quoted string, ``NIL``, a nested list, an
item after the literal, an unusual flag) goes to imapclient's parser whole, so the result
is always what it returns (``tests/unit/test_imap_fetch.py`` compares both on generated
answers and on Dovecot's).
"""

from __future__ import annotations

import re
from typing import Any

from imapclient.response_parser import parse_fetch_response

# imaplib keeps "* 12 FETCH (UID 34 FLAGS (\Seen))" as "12 (UID 34 FLAGS (\Seen))"; and
# the head of an answer whose last item is a literal: "12 (UID 34 BODY[]<0> {901}".
_LINE = re.compile(rb"([1-9][0-9]*) \((.*)\)")
_HEAD = re.compile(rb"([1-9][0-9]*) \((.*) (BODY\[\]<0>) \{([0-9]+)\}")
# One item: a name and a number ("UID 34") or a flat list ("FLAGS (\Seen $Label)").
_ITEM = re.compile(rb"([A-Z][A-Z0-9.]*) (?:(0|[1-9][0-9]*)|\(([^()]*)\))(?: |\Z)")
_ATOM = re.compile(rb"\\?\$?[A-Za-z0-9_.-]+")
# Items imapclient converts into objects of its own: left to it.
_CONVERTED = {b"INTERNALDATE", b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"}


def read_fetch(data: list[Any], normalise_times: bool = True) -> dict[int, dict[bytes, Any]]:
    """``parse_fetch_response(data, normalise_times, uid_is_key=True)``, sooner.

    Keyed by UID (by sequence number for an answer without one, as imapclient does); each
    value holds ``SEQ`` and the fetched items.
    """
    parsed = _read(data)
    if parsed is None:
        return dict(parse_fetch_response(data, normalise_times, True))
    return parsed


def _read(data: list[Any]) -> dict[int, dict[bytes, Any]] | None:
    """The answers, or None when one of them is not of the plain shapes."""
    result: dict[int, dict[bytes, Any]] = {}
    index = 0
    while index < len(data):
        element = data[index]
        index += 1
        if isinstance(element, tuple):
            if len(element) != 2 or not isinstance(element[1], bytes):
                return None
            head = _HEAD.fullmatch(element[0]) if isinstance(element[0], bytes) else None
            # The literal closes the answer: the next element is its ")".
            if head is None or index >= len(data) or data[index] != b")":
                return None
            index += 1
            if len(element[1]) != int(head[4]):
                return None
            fields = _items(head[2])
            if fields is None:
                return None
            fields[head[3]] = element[1]
            sequence = head[1]
        elif isinstance(element, bytes):
            line = _LINE.fullmatch(element)
            fields = _items(line[2]) if line is not None else None
            if line is None or fields is None:
                return None
            sequence = line[1]
        else:
            return None
        seq = int(sequence)
        uid = fields.pop(b"UID", None)
        result.setdefault(seq if uid is None else uid, {}).update({b"SEQ": seq, **fields})
    return result


def _items(text: bytes) -> dict[bytes, Any] | None:
    """``UID 34 FLAGS (\\Seen)`` as ``{b"UID": 34, b"FLAGS": (b"\\Seen",)}``, or None."""
    fields: dict[bytes, Any] = {}
    position = 0
    if not text:
        return None  # imapclient refuses an answer without items
    while position < len(text):
        item = _ITEM.match(text, position)
        if item is None:
            return None
        name, number, listed = item.groups()
        if name in _CONVERTED or (name == b"UID" and number is None):
            return None  # left to imapclient; a UID is a number
        if number is not None:
            value: Any = int(number)
        else:
            atoms = listed.split(b" ") if listed else []
            if not all(_ATOM.fullmatch(atom) and atom != b"NIL" for atom in atoms):
                return None
            value = tuple(_atom(atom) for atom in atoms)
        fields[name] = value
        position = item.end()
    if text.endswith(b" "):
        return None
    return fields


def _atom(atom: bytes) -> int | bytes:
    # imapclient's rule: digits are a number unless they start with a zero ("0123").
    if atom.isdigit() and (atom[:1] != b"0" or len(atom) == 1):
        return int(atom)
    return atom
