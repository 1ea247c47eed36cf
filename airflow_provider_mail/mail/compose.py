"""Build an email from fields: validate everything, then make an ``EmailMessage``.

Pure: no sockets. The Send Email step composes every email with :func:`compose_email`
before it opens a connection, so a bad item stops the task before anything is sent.
"""

from __future__ import annotations

import copy
import datetime as dt
import email
import email.errors
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import SMTPUTF8, Policy, compat32
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from typing import Any

from airflow_provider_mail.exceptions import InvalidAddressError, MailSendError
from airflow_provider_mail.mail import outgoing_wire
from airflow_provider_mail.mail.addresses import (
    parse_addresses,
    parse_single_address,
    unique_addr_specs,
)
from airflow_provider_mail.mail.outgoing import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    AttachmentFile,
    read_bytes,
    read_literal,
)
from airflow_provider_mail.mail.replies import bounded_references, message_ids

_HEADER_FIELDS = ("from", "to", "cc", "bcc", "reply_to", "subject")
_LINE_BREAKS = re.compile(r"[\r\n]")
# The longest header line written without the library (RFC 5322's recommended 78).
_PLAIN_LINE = 78
_MESSAGE_ID_IN_TEXT = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+>")
_MAX_QUOTED = 120
_WIRE_POLICY = default_policy.clone(linesep="\r\n")
# What starts an RFC 2047 encoded word. Text holding it is written so that receivers, who
# decode encoded words, show the text as it was given (see _LiteralHeader).
_ENCODED_WORD_START = "=?"
# Stands in for "=?" while an address is parsed, so the parser keeps it as text instead of
# decoding an encoded word: a private-use character no address needs.
_PLACEHOLDER = "\ue000"

#: Headers ``headers`` may not set: those with a parameter of their own, those MIME owns,
#: and the trace and authentication headers servers add (setting them would forge them).
RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "mime-version",
        "return-path",
        "received",
        "delivered-to",
        "dkim-signature",
        "authentication-results",
    }
)
_RESERVED_PREFIXES = ("content-", "resent-", "arc-")
#: Most extra headers one email may have, and the longest value of one.
MAX_EXTRA_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 2000
#: Most message ids In-Reply-To may name (a reply usually has one parent).
MAX_IN_REPLY_TO = 10
# Longest message id written: it goes on a line of its own, within the 998-octet limit.
_MAX_WRITTEN_ID = 900
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,76}$")
_AUTO_SUBMITTED = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
# What may stand between message ids in a value: separators, and the brackets and quotes
# of a list rendered as text by a template ("['<a@x>', '<b@x>']").
_ID_SEPARATORS = frozenset(" \t,[]'\"")


@dataclass(frozen=True)
class ComposedEmail:
    """An email ready to go: the message as transmitted and its SMTP envelope.

    The message never carries a ``Bcc`` header; Bcc recipients are only in ``recipients``.
    Common emails are written straight to bytes (``written``, see
    :mod:`~airflow_provider_mail.mail.outgoing_wire`); ``message`` then parses them.
    """

    built: EmailMessage | Message | None
    sender: str
    recipients: tuple[str, ...]
    attachments: tuple[AttachmentFile, ...] = ()
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    #: The bytes on the wire, when written without the library (``built`` is then None).
    written: bytes | None = None
    #: ``(Message-ID, From, Subject)`` of a written email, for :meth:`result`.
    summary: tuple[str, str, str] | None = None

    @functools.cached_property
    def message(self) -> EmailMessage | Message:
        """The message: as built, or the written bytes parsed as a receiver would."""
        if self.built is not None:
            return self.built
        assert self.written is not None
        return email.message_from_bytes(self.written, policy=default_policy)

    @property
    def message_id(self) -> str | None:
        """The Message-ID header."""
        if self.summary is not None:
            return self.summary[0]
        value = self.message["Message-ID"]
        return None if value is None else str(value)

    @property
    def subject(self) -> str:
        """The Subject header, or ``""``."""
        if self.summary is not None:
            return self.summary[2]
        value = self.message["Subject"]
        return "" if value is None else str(value)

    @property
    def international(self) -> bool:
        """Whether the envelope has non-ASCII addresses (the server must offer SMTPUTF8)."""
        return not all(address.isascii() for address in (self.sender, *self.recipients))

    def result(self) -> dict[str, Any]:
        """The JSON-safe record of a sent email (what the Send Email step returns)."""
        if self.summary is not None:
            sender: object = self.summary[1]
        else:
            sender = self.message["From"]
        return {
            "message_id": self.message_id,
            "from": self.sender if sender is None else str(sender),
            "to": list(self.recipients),
            "subject": self.subject,
        }

    def wire_policy(self) -> Policy:
        """The policy of the transmission: CRLF, UTF-8 headers only when international."""
        policy = SMTPUTF8 if self.international else self.message.policy
        return policy.clone(linesep="\r\n")

    def as_bytes(self) -> bytes:
        """The message as transmitted: CRLF line ends, UTF-8 headers only when international.

        Attachments are read here, when the email goes out, so a batch holds the files of
        one email at a time; each travels base64-encoded, byte for byte.
        """
        if self.written is not None:
            return self.written
        message = self.message
        if self.attachments:
            message = copy.deepcopy(message)
            assert isinstance(message, EmailMessage)
            budget = self.max_attachment_bytes
            for file in self.attachments:
                data = read_bytes(file, budget)
                budget -= len(data)
                maintype, _slash, subtype = file.content_type.partition("/")
                message.add_attachment(
                    data, maintype=maintype, subtype=subtype, filename=file.filename
                )
        with io.BytesIO() as buffer:
            BytesGenerator(buffer, policy=self.wire_policy()).flatten(message)
            return buffer.getvalue()


class _LiteralHeader(str):
    """A header value that receivers must show exactly as given, even if it holds ``=?``.

    Text that merely looks like an RFC 2047 encoded word (``Price =?utf-8?q?caf=C3=A9?=``)
    would be decoded by every mail program if written as it is; the email library decodes
    it too when a header is set. This value has a ``name``, so the policy stores and folds
    it as a ready header object (documented ``EmailPolicy`` behaviour), and its ``fold``
    writes the text itself as encoded words, which decode back to exactly the text.
    ``addresses`` (for address headers) writes each display name that way instead.
    """

    name: str
    addresses: tuple[Address, ...]

    def __new__(cls, name: str, text: str, addresses: tuple[Address, ...] = ()) -> _LiteralHeader:
        header = super().__new__(cls, text)
        header.name = name
        header.addresses = addresses
        return header

    def __deepcopy__(self, memo: dict[int, object]) -> Any:
        return self  # immutable, like the str it is

    def fold(self, *, policy: Policy) -> str:
        """The header as written on the wire, ending with the policy's line separator."""
        linesep = policy.linesep
        if not self.addresses:
            return f"{self.name}: {_encoded(str(self), self.name, linesep)}{linesep}"
        parts = [
            f"{_encoded(a.display_name, self.name, linesep)} <{a.addr_spec}>"
            if a.display_name
            else a.addr_spec
            for a in self.addresses
        ]
        return f"{self.name}: " + f",{linesep} ".join(parts) + linesep


def _encoded(text: str, name: str, linesep: str) -> str:
    return Header(text, "utf-8", header_name=name).encode(linesep=linesep)


def _label(item: int | None) -> str:
    return "The email" if item is None else f"Item {item}"


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "...")


def _texts(value: object, field: str, label: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(element) for element in value if element is not None]
    if isinstance(value, (str, int, float)):
        return [str(value)]
    raise MailSendError(
        f"{label} has a {field} of type {type(value).__name__}; give text or a list of text."
    )


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _as_decoded(text: str) -> str:
    """``text`` as a receiver shows it when written as it is: encoded words decoded."""
    if _ENCODED_WORD_START not in text:
        return text
    try:
        return str(default_policy.header_factory("Subject", text))
    except (ValueError, IndexError, TypeError):
        return text


def _check_text(text: str, field: str, label: str) -> None:
    """Refuse a line break or control character in a header value, raw or encoded."""
    if "\r" in text or "\n" in text:
        raise MailSendError(
            f"{label} has a line break in its {field}, which could inject headers, so "
            "it was refused; remove line breaks from that value."
        )
    if _has_control(text):
        raise MailSendError(
            f"{label} has a control character in its {field}; remove it from that value."
        )
    decoded = _as_decoded(text)
    if "\r" in decoded or "\n" in decoded or _has_control(decoded):
        raise MailSendError(
            f"{label} has an encoded word (=?...?=) in its {field} that decodes to a "
            "line break or control character, which could inject headers, so it was "
            "refused; remove that encoded word from the value."
        )


def _check_header_values(fields: Mapping[str, Any], label: str) -> None:
    """Refuse line breaks and control characters before the email library sees them.

    The library would refuse raw CR/LF too, but with a message that does not say which item
    or field; a line break in a header is how header injection starts, so it is never fixed
    up. A value that is (or holds) an encoded word decoding to a line break is refused the
    same way: written as it is, some Python versions put the decoded line break on the wire.
    """
    for field in _HEADER_FIELDS:
        for text in _texts(fields.get(field), field, label):
            _check_text(text, field, label)


class _IdsHeader(str):
    """A threading header (In-Reply-To, References) written as it is: one id per line.

    The email library treats these headers as free text and writes a long message id as
    encoded words, which no mail program reads back as an id.
    """

    name: str
    ids: tuple[str, ...]

    def __new__(cls, name: str, ids: tuple[str, ...]) -> _IdsHeader:
        header = super().__new__(cls, " ".join(ids))
        header.name = name
        header.ids = ids
        return header

    def __deepcopy__(self, memo: dict[int, object]) -> Any:
        return self  # immutable, like the str it is

    def fold(self, *, policy: Policy) -> str:
        """The header as written on the wire, ending with the policy's line separator."""
        return f"{self.name}: " + f"{policy.linesep} ".join(self.ids) + policy.linesep


def _id_texts(value: object, field: str, label: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    return _texts(value, field, label)


def thread_ids(value: object, field: str, label: str) -> list[str]:
    """The message ids of an ``in_reply_to`` or ``references`` value, checked.

    Accepts ``"<a@x>"``, ``"<a@x> <b@x>"``, ``"a@x"`` (brackets added to a bare word only
    when it has an ``@``), a list of these, or
    a list rendered as text (``"['<a@x>', '<b@x>']"``); anything else in the value is an
    error, so a stranger's text never rides along in a threading header.
    """
    ids: list[str] = []
    for text in _id_texts(value, field, label):
        _check_text(text, field, label)
        found = message_ids(text)
        rest = _MESSAGE_ID_IN_TEXT.sub(" ", text) if found else text
        if found and not set(rest) <= _ID_SEPARATORS:
            found = []
        if not found:
            words = [w for w in re.split(r"[\s,]+", text.strip(" \t[]'\"")) if w]
            found = [f"<{word.strip(chr(39) + chr(34))}>" for word in words]
            if not all("@" in one and message_ids(one) == [one] for one in found):
                raise MailSendError(
                    f"{label} has a {field} {_quoted(text)} that is not a list of message ids "
                    "such as <id@example.org>; map it from a record's message_id or references."
                )
        for one in found:
            if len(one) > _MAX_WRITTEN_ID:
                raise MailSendError(
                    f"{label} has a {field} message id longer than {_MAX_WRITTEN_ID} "
                    "characters; shorten it or leave it out."
                )
        ids.extend(found)
    return ids


def _threading(fields: Mapping[str, Any], label: str) -> dict[str, tuple[str, ...]]:
    in_reply_to = bounded_references(
        thread_ids(fields.get("in_reply_to"), "in_reply_to", label), MAX_IN_REPLY_TO
    )
    references = bounded_references(thread_ids(fields.get("references"), "references", label))
    return {"In-Reply-To": tuple(in_reply_to), "References": tuple(references)}


def _auto_submitted(fields: Mapping[str, Any], label: str) -> str | None:
    value = fields.get("auto_submitted")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not isinstance(value, str) or not _AUTO_SUBMITTED.match(text):
        raise MailSendError(
            f"{label} has an auto_submitted {_quoted(str(value))} that is not an RFC 3834 "
            "value; use 'auto-replied', 'auto-generated' or 'no'."
        )
    return text.lower()


def header_dict(value: object, label: str) -> dict[str, str]:
    """Read a ``headers`` value: a dict, or a dict a template rendered as text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        value = read_literal(value, label, "headers")
    if not isinstance(value, Mapping):
        raise MailSendError(
            f"{label} has headers of type {type(value).__name__}; give a dict such as "
            "{'X-Ticket': '42'}."
        )
    return {str(name): value[name] for name in value}


def _extra_headers(fields: Mapping[str, Any], label: str) -> list[tuple[str, str]]:
    headers = header_dict(fields.get("headers"), label)
    if len(headers) > MAX_EXTRA_HEADERS:
        raise MailSendError(
            f"{label} has {len(headers)} extra headers, more than {MAX_EXTRA_HEADERS}; set fewer."
        )
    checked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise MailSendError(
                f"{label} has a header name {_quoted(name)} that is not a valid field name; "
                "use letters, digits and dashes, such as X-Ticket-Id."
            )
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIXES):
            raise MailSendError(
                f"{label} sets the header {name} through headers, which cannot set it; use "
                "the operator's parameter for it, or leave it to the email library."
            )
        if lowered in seen:
            raise MailSendError(f"{label} sets the header {name} twice; set it once.")
        seen.add(lowered)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise MailSendError(
                f"{label} has a {name} header of type {type(value).__name__}; give text."
            )
        text = str(value).strip()
        if len(text) > MAX_HEADER_VALUE_CHARS:
            raise MailSendError(
                f"{label} has a {name} header longer than {MAX_HEADER_VALUE_CHARS} "
                "characters; shorten it."
            )
        _check_text(text, f"{name} header", label)
        checked.append((name, text))
    return checked


def _literal_addresses(texts: list[str]) -> tuple[Address, ...]:
    """Parse addresses keeping encoded-word look-alikes as text (the parser would decode them)."""
    if not any(_ENCODED_WORD_START in text for text in texts):
        simple = outgoing_wire.simple_addresses(texts)
        return parse_addresses(texts) if simple is None else simple
    parsed = parse_addresses([text.replace(_ENCODED_WORD_START, _PLACEHOLDER) for text in texts])
    return tuple(
        Address(
            display_name=a.display_name.replace(_PLACEHOLDER, _ENCODED_WORD_START),
            username=a.username.replace(_PLACEHOLDER, _ENCODED_WORD_START),
            domain=a.domain,
        )
        for a in parsed
    )


class _PlainHeader(str):
    """A header whose value is short printable ASCII, written exactly as it is.

    The email library parses every header it is given into an object tree and folds it
    back when writing, about a tenth of a millisecond each; for a value that needs no
    quoting, encoding or folding that gives back the same text, so it is skipped.
    """

    name: str

    def __new__(cls, name: str, text: str) -> _PlainHeader:
        header = super().__new__(cls, text)
        header.name = name
        return header

    def __deepcopy__(self, memo: dict[int, object]) -> Any:
        return self  # immutable, like the str it is

    def fold(self, *, policy: Policy) -> str:
        """The header as written on the wire, ending with the policy's line separator."""
        return f"{self.name}: {self}{policy.linesep}"


def _plain(name: str, text: str) -> _PlainHeader | None:
    """``text`` as a :class:`_PlainHeader` when it can be written as it is, else ``None``."""
    if (
        len(name) + 2 + len(text) <= _PLAIN_LINE
        and text.isascii()
        and text.isprintable()
        and text == text.strip()
        and _ENCODED_WORD_START not in text
    ):
        return _PlainHeader(name, text)
    return None


def _plain_address(address: Address) -> bool:
    # str(Address) quotes a display name with specials itself; a quote or backslash inside
    # it, or non-ASCII, is left to the library.
    return address.display_name.isascii() and not any(c in address.display_name for c in '"\\')


def _address_header(name: str, addresses: tuple[Address, ...]) -> object:
    """The value to set for an address header: the library's, unless a name holds ``=?``."""
    if any(_ENCODED_WORD_START in a.display_name for a in addresses):
        return _LiteralHeader(name, ", ".join(map(str, addresses)), addresses)
    if all(_plain_address(a) for a in addresses):
        plain = _plain(name, ", ".join(map(str, addresses)))
        if plain is not None:
            return plain
    return addresses


def _text_header(name: str, text: str) -> object:
    if _ENCODED_WORD_START in text:
        return _LiteralHeader(name, text)
    return _plain(name, text) or text


def _check_wire(composed: ComposedEmail, label: str) -> None:
    """Read the headers back as a receiver would and refuse anything but what was written.

    The last line of defence against header injection, whatever the Python version's email
    library does: each header folds to exactly one header, and none decodes to a line break.
    """
    policy = composed.wire_policy()
    raw = list(composed.message.raw_items())
    try:
        folded = b"".join(policy.fold_binary(name, value) for name, value in raw)
    except (ValueError, UnicodeError, email.errors.MessageError):
        raise MailSendError(
            f"{label} has a header the email library refuses to write (a line break in it "
            "could inject headers); remove line breaks from its header values."
        ) from None
    # compat32 reads the raw values without building header objects (the default policy's
    # cost a millisecond per email); only values holding an encoded word are decoded, as a
    # receiver would, since only those can turn into something else.
    received = BytesHeaderParser(policy=compat32).parsebytes(folded + b"\r\n")
    names = [name.lower() for name, _value in raw]
    if [name.lower() for name in received] != names:
        raise MailSendError(
            f"{label} would go out with headers it did not set, which is header injection, "
            "so it was refused; remove line breaks and encoded words from its header values."
        )
    for name, value in received.items():
        text = _LINE_BREAKS.sub("", str(value))  # unfolded, as the default policy does
        if _ENCODED_WORD_START in text:
            text = str(default_policy.header_factory(name, text))
        if _has_control(text):
            raise MailSendError(
                f"{label} has a {name} header that decodes to a line break or control "
                "character, so it was refused; remove it from that value."
            )


def _addresses(fields: Mapping[str, Any], field: str, label: str) -> tuple[Address, ...]:
    try:
        return _literal_addresses(_texts(fields.get(field), field, label))
    except InvalidAddressError as err:
        raise MailSendError(
            f"{label} has an invalid {field} address {_quoted(err.value)}; use name@domain "
            "or Name <name@domain>, several separated by commas."
        ) from None


def _sender(fields: Mapping[str, Any], label: str) -> Address:
    try:
        senders = _literal_addresses(_texts(fields.get("from"), "from", label))
        if len(senders) > 1:
            raise InvalidAddressError(", ".join(map(str, senders)))
        sender = senders[0] if senders else None
    except InvalidAddressError as err:
        raise MailSendError(
            f"{label} has an invalid from address {_quoted(err.value)}; give exactly one "
            "address such as name@domain or Name <name@domain>."
        ) from None
    if sender is None:
        raise MailSendError(f"{label} has no sender; set from_email on the operator.")
    return sender


def _body(value: object) -> str:
    return "" if value is None else str(value)


def new_message_id(domain: str) -> str:
    """A unique Message-ID under the sender's domain (IDNA-encoded when needed)."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = None
    if ascii_domain and ascii_domain.startswith("["):
        ascii_domain = None
    return make_msgid(domain=ascii_domain)


@dataclass(frozen=True)
class _Headers:
    """The validated header values of one email, in the order they are written."""

    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    date: str
    message_id: str
    threading: dict[str, tuple[str, ...]]
    auto_submitted: str | None
    extra: list[tuple[str, str]]

    def texts(self) -> list[tuple[str, str]] | None:
        """``(name, text)`` of each header as a receiver reads it; ``None`` if not plain."""
        addresses = (self.sender, *self.to, *self.cc, *self.reply_to)
        if not all(outgoing_wire.is_simple(address) for address in addresses):
            return None
        texts = [("From", outgoing_wire.address_text(self.sender))]
        for name, group in (("To", self.to), ("Cc", self.cc), ("Reply-To", self.reply_to)):
            if group:
                texts.append((name, ", ".join(map(outgoing_wire.address_text, group))))
        if self.subject:
            texts.append(("Subject", self.subject))
        texts += [("Date", self.date), ("Message-ID", self.message_id)]
        texts += [(name, " ".join(ids)) for name, ids in self.threading.items() if ids]
        if self.auto_submitted:
            texts.append(("Auto-Submitted", self.auto_submitted))
        return texts + self.extra


def _written(headers: _Headers, text: str, html: str, label: str) -> bytes | None:
    """The email written without the library (:mod:`.outgoing_wire`), when its shape allows."""
    texts = headers.texts()
    if texts is None or any(_ENCODED_WORD_START in value for _name, value in texts):
        return None
    lines: list[str] = []
    for name, value in texts:
        if name in ("From", "To", "Cc", "Reply-To"):
            group = {"From": (headers.sender,), "To": headers.to, "Cc": headers.cc}
            line = outgoing_wire.address_line(name, group.get(name, headers.reply_to))
        elif name in headers.threading:
            line = _IdsHeader(name, headers.threading[name]).fold(policy=_WIRE_POLICY)
        else:
            line = outgoing_wire.header_line(name, value)
        if line is None:
            return None
        lines.append(line)
    data = outgoing_wire.write(lines, text, html)
    if data is None:
        return None
    if not outgoing_wire.check_written(texts, data):
        raise MailSendError(
            f"{label} would go out with headers it did not set, which is header injection, "
            "so it was refused; remove line breaks and encoded words from its header values."
        )
    return data


def compose_email(
    fields: Mapping[str, Any],
    *,
    item: int | None = None,
    now: dt.datetime | None = None,
    attachments: tuple[AttachmentFile, ...] = (),
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> ComposedEmail:
    """Validate ``fields`` and build the email.

    :param fields: ``from``, ``to``, ``cc``, ``bcc``, ``reply_to`` (a string of
        comma-separated addresses or a list), ``subject``, ``text`` and ``html``;
        ``in_reply_to`` and ``references`` (message ids, text or a list), ``headers`` (a
        dict of extra headers) and ``auto_submitted`` (an RFC 3834 value); missing or
        empty fields are left out.
    :param item: the consumed-data index, named in error messages.
    :param now: the Date header's time (default: now, in the local time zone).
    :param attachments: files checked by :func:`airflow_provider_mail.mail.outgoing.resolve`;
        they are read when the email is written out (:meth:`ComposedEmail.as_bytes`).
    :param max_attachment_bytes: the most bytes the attachments may add up to when read.
    :raises MailSendError: no recipient, an invalid address, or a line break (or another
        control character) in a header value; the message names the item and the field.

    ``text`` and ``html`` together make a ``multipart/alternative`` message. Bcc
    recipients are in the envelope only.
    """
    label = _label(item)
    _check_header_values(fields, label)
    threading = _threading(fields, label)
    auto_submitted = _auto_submitted(fields, label)
    extra_headers = _extra_headers(fields, label)
    sender = _sender(fields, label)
    to = _addresses(fields, "to", label)
    cc = _addresses(fields, "cc", label)
    bcc = _addresses(fields, "bcc", label)
    reply_to = _addresses(fields, "reply_to", label)
    recipients = unique_addr_specs((*to, *cc, *bcc))
    if not recipients:
        raise MailSendError(
            f"{label} has no recipient; set to, cc or bcc on the operator or in the consumed data."
        )

    subject = "".join(_texts(fields.get("subject"), "subject", label)).strip()
    date = format_datetime(now or dt.datetime.now(dt.timezone.utc).astimezone())
    message_id = new_message_id(sender.domain)
    text, html = _body(fields.get("text")), _body(fields.get("html"))
    headers = _Headers(
        sender=sender,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        date=date,
        message_id=message_id,
        threading=threading,
        auto_submitted=auto_submitted,
        extra=extra_headers,
    )
    if not attachments:
        written = _written(headers, text, html, label)
        if written is not None:
            return ComposedEmail(
                built=None,
                sender=sender.addr_spec,
                recipients=recipients,
                written=written,
                summary=(message_id, outgoing_wire.address_text(sender), subject),
            )
    message = EmailMessage(policy=default_policy)
    try:
        message["From"] = _address_header("From", (sender,))
        if to:
            message["To"] = _address_header("To", to)
        if cc:
            message["Cc"] = _address_header("Cc", cc)
        if reply_to:
            message["Reply-To"] = _address_header("Reply-To", reply_to)
        if subject:
            message["Subject"] = _text_header("Subject", subject)
        message["Date"] = _plain("Date", date) or date
        message["Message-ID"] = _plain("Message-ID", message_id) or message_id
        for name, ids in threading.items():
            if ids:
                message[name] = _IdsHeader(name, ids)
        if auto_submitted:
            message["Auto-Submitted"] = auto_submitted
        for name, value in extra_headers:
            message[name] = _text_header(name, value)
    except (ValueError, TypeError) as err:
        raise MailSendError(
            f"{label} has a header value the email library refused ({type(err).__name__}); "
            "check its addresses, subject and headers."
        ) from None
    if html.strip():
        if text.strip():
            message.set_content(text)
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    else:
        message.set_content(text)
    composed = ComposedEmail(
        built=message,
        sender=sender.addr_spec,
        recipients=recipients,
        attachments=attachments,
        max_attachment_bytes=max_attachment_bytes,
    )
    _check_wire(composed, label)
    return composed


def _header_texts(message: Message, name: str) -> list[str]:
    return [str(value) for value in message.get_all(name, [])]


def envelope_of(message: Message, *, index: int | None = None) -> ComposedEmail:
    """The envelope of a ready-made message, and a copy of it fit to transmit.

    The sender is the ``Sender`` header, else ``From``; the recipients are every address
    in ``To``, ``Cc`` and ``Bcc``. The copy has no ``Bcc`` header and gets a ``Date`` and a
    ``Message-ID`` when the message has none. The caller's message is not changed.
    """
    label = "The email" if index is None else f"Email {index}"
    try:
        sender = parse_single_address(
            _header_texts(message, "Sender") or _header_texts(message, "From")
        )
        recipients = unique_addr_specs(
            parse_addresses(
                [text for name in ("To", "Cc", "Bcc") for text in _header_texts(message, name)]
            )
        )
    except InvalidAddressError as err:
        raise MailSendError(
            f"{label} has an invalid address {_quoted(err.value)}; fix its From, To, Cc or Bcc "
            "header."
        ) from None
    if sender is None:
        raise MailSendError(f"{label} has no From header; set the sender's address.")
    if not recipients:
        raise MailSendError(f"{label} has no recipient; set its To, Cc or Bcc header.")
    # A shallow copy shares the header list until the first deletion replaces it, so the
    # deletions come first; the payload is shared and never changed.
    transmitted = copy.copy(message)
    del transmitted["Bcc"]
    del transmitted["Resent-Bcc"]
    if transmitted["Date"] is None:
        transmitted["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc).astimezone())
    if transmitted["Message-ID"] is None:
        transmitted["Message-ID"] = new_message_id(sender.domain)
    composed = ComposedEmail(built=transmitted, sender=sender.addr_spec, recipients=recipients)
    _check_wire(composed, label)
    return composed
