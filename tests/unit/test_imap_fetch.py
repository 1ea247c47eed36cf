"""The quick FETCH reader returns exactly what imapclient's parser returns, for any answer."""

from __future__ import annotations

import random
from typing import Any

from imapclient.response_parser import parse_fetch_response

from airflow_provider_mail.mail import imap_fetch
from airflow_provider_mail.mail.imap_fetch import read_fetch

FLAGS = [b"\\Seen", b"\\Deleted", b"$AirflowMailPending", b"$Label1", b"Junk"]
ODD_FLAGS = [b"NIL", b"0123", b"7", b'"quoted"', b"a[b]", b"\\*", b"", b"(x)"]
ODD_NAMES = [b"X-GM-MSGID", b"uid", b"INTERNALDATE", b"BODY", b"ENVELOPE"]
ODD_NUMBERS = [b"007", b"-1", b"NIL", b"1.5", b'"3"']


def often(generator: random.Random, usual: list[bytes], odd: list[bytes]) -> bytes:
    """Mostly a usual value, sometimes an odd one (one draw in eight)."""
    return generator.choice(odd if generator.randint(0, 7) == 0 else usual)


def item(generator: random.Random) -> bytes:
    name = often(generator, [b"UID", b"RFC822.SIZE", b"MODSEQ", b"FLAGS"], ODD_NAMES)
    number = often(generator, [b"0", b"1", b"34", b"901", b"4294967295"], ODD_NUMBERS)
    plain_number = name in (b"UID", b"RFC822.SIZE", b"MODSEQ")
    if name == b"FLAGS" or (not plain_number and generator.random() < 0.5):
        flags = [often(generator, FLAGS, ODD_FLAGS) for _ in range(generator.randint(0, 3))]
        value = b"(" + b" ".join(flags) + b")"
    elif name == b"MODSEQ":
        value = b"(" + number + b")" if generator.randint(0, 7) else number
    else:
        value = number if generator.randint(0, 7) else b"(" + number + b")"
    return name + b" " + value


def answer(generator: random.Random) -> list[Any]:
    """What imaplib hands over for one ``UID FETCH``: lines, and (head, literal) + ")"."""
    data: list[Any] = []
    for _ in range(generator.randint(0, 4)):
        seq = often(generator, [b"1", b"2", b"12"], [b"0", b"01"])
        inner = b" ".join(item(generator) for _ in range(generator.randint(0, 4)))
        if generator.random() < 0.5:
            literal = generator.randbytes(generator.randint(0, 40))
            size = len(literal) + (generator.randint(0, 7) == 0)
            head = seq + b" (" + inner + (b" " if inner else b"") + b"BODY[]<0> {%d}" % size
            data += [(head, literal), often(generator, [b")"], [b" UID 9)", b"", b"))"])]
        else:
            data.append(seq + b" (" + inner + b")")
    return data


def imapclient_or_error(data: list[Any]) -> object:
    try:
        return dict(parse_fetch_response(data, True, True))
    except Exception as err:  # what imapclient refuses, the reader must refuse the same way
        return type(err)


def test_the_reader_returns_what_imapclient_returns() -> None:
    generator = random.Random(3501)
    quick = 0
    for _ in range(4000):
        data = answer(generator)
        try:
            ours: object = read_fetch(data)
        except Exception as err:
            ours = type(err)
        assert ours == imapclient_or_error(data), data
        quick += imap_fetch._read(data) is not None and bool(data)
    assert quick > 300  # the quick path itself was compared, not only the fallback


def test_the_usual_answers_take_the_quick_path() -> None:
    """Dovecot's answers to the hooks' FETCHes: none of them needs imapclient's parser."""
    body = b"Subject: Hi\r\n\r\nHello\r\n"
    usual = [
        [(b"1 (UID 7 RFC822.SIZE 22 BODY[]<0> {22}", body), b")"],
        [b"1 (UID 7 RFC822.SIZE 22)", b"2 (UID 9 RFC822.SIZE 4100)"],
        [b"3 (UID 11 MODSEQ (42) FLAGS (\\Seen $AirflowMailPending))"],
        [b"3 (UID 11 FLAGS () MODSEQ (42))", b"4 (FLAGS (\\Seen))"],
    ]
    for data in usual:
        assert imap_fetch._read(data) is not None
        assert read_fetch(data) == dict(parse_fetch_response(data, True, True))
    assert read_fetch(usual[0]) == {7: {b"SEQ": 1, b"RFC822.SIZE": 22, b"BODY[]<0>": body}}
    assert read_fetch(usual[3])[4] == {b"SEQ": 4, b"FLAGS": (b"\\Seen",)}  # news, no UID
