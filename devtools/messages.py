"""Sample messages for filling mailboxes."""

from __future__ import annotations


def numbered(count: int, prefix: str = "Lead") -> list[bytes]:
    """``count`` small raw messages, ``Subject: <prefix> <i>``, dated in ascending order.

    Message-IDs are ``<prefix-i@example.com>`` (prefix lower-cased), so a test can tell
    which message arrived where.
    """
    return [
        (
            f"From: Person {i} <person{i}@example.com>\r\nTo: info@example.com\r\n"
            f"Subject: {prefix} {i}\r\nMessage-ID: <{prefix.lower()}-{i}@example.com>\r\n"
            f"Date: Sun, 29 Nov 2026 10:{i:02d}:00 +0100\r\n\r\nHello number {i}.\r\n"
        ).encode()
        for i in range(count)
    ]
