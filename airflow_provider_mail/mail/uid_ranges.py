"""A compact set of IMAP UIDs, kept as ranges (pure).

``after_receive="leave_unread"`` remembers every UID it handed over, per connection,
account, folder and UIDVALIDITY. UIDs are handed over mostly in ascending runs, so a
range list stays tiny: 100,000 messages handed over in order are the 9 characters
``1:100000``. The text form is an IMAP sequence set, so it also goes straight into a
``UID SEARCH ... NOT UID <set>``. A set scattered by a ``search`` (every other message
matched) is stored as compressed gaps instead: 100,000 scattered UIDs take 15 to 75 KB
rather than half a megabyte (``tests/test_search_params.py``).
"""

from __future__ import annotations

import base64
import bisect
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: Longest plain sequence set stored as it is (readable in the Variables page).
STORED_PLAIN_LIMIT = 4096

#: Longest sequence set one command carries. RFC 7162 (section 4) asks clients to keep a
#: command line within 8192 octets, and Dovecot refuses an argument over 64 KiB: one
#: ``UID FETCH`` of 16,000 unseen UIDs failed every poll, so the backlog never drained.
MAX_SET_TEXT = 8000


@dataclass(frozen=True)
class UidRanges:
    """Sorted, disjoint, non-adjacent inclusive ranges ``(first, last)`` of UIDs."""

    ranges: tuple[tuple[int, int], ...] = field(default=())

    @classmethod
    def of(cls, uids: Iterable[int]) -> UidRanges:
        """The set of ``uids``."""
        return cls().add(uids)

    @classmethod
    def parse(cls, text: str) -> UidRanges:
        """The inverse of :meth:`to_text` (``"1:5,7"``); an empty text is the empty set.

        Malformed parts (a hand-edited Variable) raise ``ValueError``.
        """
        pairs: list[tuple[int, int]] = []
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            first, _, last = part.partition(":")
            low, high = int(first), int(last or first)
            if low < 1 or high < low:
                raise ValueError(f"not a UID range: {part!r}")
            pairs.append((low, high))
        return cls(_normalised(pairs))

    def to_text(self) -> str:
        """An IMAP sequence set, e.g. ``"1:500,502"``; ``""`` when empty."""
        return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in self.ranges)

    def to_texts(self, limit: int | None = None) -> Iterator[str]:
        """The set as IMAP sequence sets of at most ``limit`` (:data:`MAX_SET_TEXT`)
        characters each, ascending: one command per text keeps every command line short,
        however scattered the UIDs.

        >>> list(UidRanges.of([1, 2, 3, 7, 9, 10]).to_texts(limit=5))
        ['1:3,7', '9:10']
        """
        limit = MAX_SET_TEXT if limit is None else limit
        parts: list[str] = []
        length = -1  # no comma before the first part
        for first, last in self.ranges:
            part = str(first) if first == last else f"{first}:{last}"
            if parts and length + 1 + len(part) > limit:
                yield ",".join(parts)
                parts, length = [], -1
            parts.append(part)
            length += 1 + len(part)
        if parts:
            yield ",".join(parts)

    def to_stored(self) -> str:
        """The form kept in a Variable: the sequence set, or ``z:`` + compressed gaps when
        the set is long (ranges as distances from the previous one, zlib, base64)."""
        text = self.to_text()
        if len(text) <= STORED_PLAIN_LIMIT:
            return text
        previous, parts = 0, []
        for first, last in self.ranges:
            parts.append(f"{first - previous}" + (f"+{last - first}" if last > first else ""))
            previous = last
        packed = zlib.compress(",".join(parts).encode("ascii"), 9)
        return "z:" + base64.b64encode(packed).decode("ascii")

    @classmethod
    def from_stored(cls, stored: str) -> UidRanges:
        """The inverse of :meth:`to_stored`; malformed input raises ``ValueError``."""
        if not stored.startswith("z:"):
            return cls.parse(stored)
        try:
            gaps = zlib.decompress(base64.b64decode(stored[2:])).decode("ascii")
        except (zlib.error, ValueError) as err:
            raise ValueError("not a stored UID set") from err
        pairs, previous = [], 0
        for part in filter(None, gaps.split(",")):
            distance, _, length = part.partition("+")
            first = previous + int(distance)
            previous = first + int(length or 0)
            pairs.append((first, previous))
        return cls.parse(",".join(f"{a}:{b}" for a, b in pairs))

    def add(self, uids: Iterable[int]) -> UidRanges:
        """This set with ``uids`` added."""
        new = sorted({int(uid) for uid in uids})
        if not new:
            return self
        pairs = list(self.ranges)
        start = previous = new[0]
        for uid in new[1:]:
            if uid != previous + 1:
                pairs.append((start, previous))
                start = uid
            previous = uid
        pairs.append((start, previous))
        return UidRanges(_normalised(pairs))

    def remove(self, uids: Iterable[int]) -> UidRanges:
        """This set without ``uids`` (a give-back after a failed read)."""
        gone = sorted({int(uid) for uid in uids if uid in self})
        if not gone:
            return self
        pairs: list[tuple[int, int]] = []
        for first, last in self.ranges:
            start = first
            for uid in gone[bisect.bisect_left(gone, first) : bisect.bisect_right(gone, last)]:
                if uid > start:
                    pairs.append((start, uid - 1))
                start = uid + 1
            if start <= last:
                pairs.append((start, last))
        return UidRanges(tuple(pairs))

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        index = bisect.bisect_right(self.ranges, (uid, float("inf"))) - 1
        return index >= 0 and self.ranges[index][0] <= uid <= self.ranges[index][1]

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for first, last in self.ranges:
            yield from range(first, last + 1)

    def without_present(self, uids: Iterable[int]) -> list[int]:
        """Of ``uids``, the ones not in this set, in their order."""
        return [uid for uid in uids if uid not in self]


def sequence_sets(uids: Iterable[int]) -> Iterator[str]:
    """``uids`` as short IMAP sequence sets (:meth:`UidRanges.to_texts`), ascending."""
    return UidRanges.of(uids).to_texts()


def _normalised(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, overlapping and adjacent ranges merged."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(pairs):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def without_handed_over(
    value: object, uidvalidity: int | None, uids: Iterable[int]
) -> dict[str, object]:
    """The stored value after ``uids`` were given back (a read that failed)."""
    return _stored(
        uidvalidity,
        handed_over(value, uidvalidity).remove(uids),
        pending_of(value, uidvalidity).remove(uids),
    )


def handed_over(value: object, uidvalidity: int | None) -> UidRanges:
    """The UIDs handed over from a folder of ``uidvalidity``, from its stored ``value``.

    The stored value is ``{"uidvalidity": 123, "uids": "1:500,502"}``; another
    UIDVALIDITY (the folder was recreated) means none of its UIDs name these messages.
    """
    return _ranges(value, uidvalidity, "uids")


def pending_of(value: object, uidvalidity: int | None) -> UidRanges:
    """Of the handed-over UIDs, those an AssetWatcher trigger took whose event may not
    have gone out yet (``"pending"`` beside ``"uids"``; absent when there are none)."""
    return _ranges(value, uidvalidity, "pending")


def with_handed_over(
    value: object, uidvalidity: int | None, uids: Iterable[int], *, pending: bool = False
) -> dict[str, object]:
    """The stored value after ``uids`` of a folder of ``uidvalidity`` were handed over;
    ``pending``: also as pending (an AssetWatcher's take, before its event is out)."""
    uids = list(uids)
    waiting = pending_of(value, uidvalidity)
    return _stored(
        uidvalidity,
        handed_over(value, uidvalidity).add(uids),
        waiting.add(uids) if pending else waiting,
    )


def without_pending(
    value: object, uidvalidity: int | None, uids: Iterable[int]
) -> dict[str, object]:
    """The stored value after the event naming ``uids`` went out (still handed over)."""
    return _stored(
        uidvalidity, handed_over(value, uidvalidity), pending_of(value, uidvalidity).remove(uids)
    )


def _ranges(value: object, uidvalidity: int | None, key: str) -> UidRanges:
    if not isinstance(value, dict) or value.get("uidvalidity") != uidvalidity:
        return UidRanges()
    return UidRanges.from_stored(str(value.get(key) or ""))


def _stored(uidvalidity: int | None, uids: UidRanges, pending: UidRanges) -> dict[str, object]:
    stored: dict[str, object] = {"uidvalidity": uidvalidity, "uids": uids.to_stored()}
    if pending:
        stored["pending"] = pending.to_stored()
    return stored
