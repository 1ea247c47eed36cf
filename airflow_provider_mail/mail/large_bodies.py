"""Find the long base64 bodies of a raw message, so that it can be parsed without them.

Python's email parser holds a body as a list of line strings and then joins them: for a
50 MiB attachment that is about 2.6 times the message before a byte is decoded.
``build_record`` therefore parses a big message with each long run of base64 lines
replaced by one token line, and decodes the run later straight from the raw bytes.

A run is a sequence of whole lines made only of the base64 characters ``A-Z a-z 0-9 + / =``,
each ending in CRLF or a bare LF. To the parser such a line is the same kind of line
wherever it is: it cannot be a header, a header's continuation, a blank line or a MIME
boundary. The token line is made of letters and digits too, so the message parses to the
same structure, with the token where the run's text would have been.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = ["LiftedBodies", "Run", "lift_large_bodies"]

# No possessive quantifiers (Python 3.11+): the class excludes CR and LF, so a line
# cannot backtrack into the next one anyway.
_RUN = re.compile(rb"(?<=\n)(?:[A-Za-z0-9+/=]+\r?\n)+")


@dataclass(frozen=True)
class Run:
    """One run of base64 lines: ``raw[start:end]``, and the line that stands for it.

    ``raw[start:body_end]`` is the run without its last line break, which the parser strips
    when the run ends a part.
    """

    start: int
    end: int
    body_end: int
    line: bytes


@dataclass(frozen=True)
class LiftedBodies:
    """The runs lifted out of one message, in order, and how to find their tokens.

    ``token`` matches the token of a run in parsed text; its group 1 is the run's index.
    """

    runs: tuple[Run, ...]
    token: re.Pattern[str]


def lift_large_bodies(raw: bytes, min_size: int) -> LiftedBodies | None:
    """The runs of at least ``min_size`` bytes in ``raw``, or ``None`` when there is none.

    Each token carries a random nonce, so that no text of the message can pass for one.
    """
    prefix = f"AirflowMailBody{secrets.token_hex(8)}N"
    runs: list[Run] = []
    for match in _RUN.finditer(raw):
        start, end = match.span()
        if end - start < min_size:
            continue
        line_break = b"\r\n" if raw[end - 2 : end] == b"\r\n" else b"\n"
        token = f"{prefix}{len(runs):08d}".encode("ascii")
        runs.append(Run(start, end, end - len(line_break), token + line_break))
    if not runs:
        return None
    return LiftedBodies(tuple(runs), re.compile(re.escape(prefix) + "([0-9]{8})"))
