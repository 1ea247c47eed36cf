"""A plain-text rendering of an HTML body, for the record's ``text`` of HTML-only mail."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser

log = logging.getLogger(__name__)

_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\f\r\n]+")

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "details", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"}
)
_HIDDEN_TAGS = frozenset({"script", "style", "template", "title"})


class _TextRenderer(HTMLParser):
    """Collects the visible text of an HTML body, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0
        self._preformatted = 0
        # Line breaks owed by block boundaries; "</li><li>" owes one break, not two.
        self._pending_breaks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br":
            self._write("\n")
        elif tag in ("td", "th") and not self._at_line_start():
            self._write("\t")
        elif tag in _BLOCK_TAGS:
            self._break_line(tag)
        if tag == "pre":
            self._preformatted += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self._break_line(tag)
        if tag == "pre":
            self._preformatted = max(0, self._preformatted - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        data = data.replace("\xa0", " ")
        if not self._preformatted:
            data = _SPACES.sub(" ", data)
            if self._at_line_start():
                data = data.lstrip(" ")
            if not data:
                return
        self._write(data)

    def _break_line(self, tag: str) -> None:
        breaks = 2 if tag in _PARAGRAPH_TAGS else 1
        self._pending_breaks = max(self._pending_breaks, breaks)

    def _at_line_start(self) -> bool:
        return bool(self._pending_breaks) or not self.chunks or self.chunks[-1].endswith("\n")

    def _write(self, text: str) -> None:
        if self._pending_breaks:
            self.chunks.append("\n" * self._pending_breaks)
            self._pending_breaks = 0
        self.chunks.append(text)


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML body: visible text, one line per block element.

    Scripts, styles and the title are dropped, entities decoded, runs of spaces collapsed
    (except inside ``<pre>``); ``<br>``, paragraphs, list items, table rows and other block
    elements start new lines.

    >>> html_to_text("<p>Hello&nbsp;<b>Jane</b></p><p>Bye</p>")
    'Hello Jane\\n\\nBye'
    """
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
    except Exception as err:  # html.parser is lenient; keep what it read if it gives up
        log.warning("HTML body could not be fully rendered as text (%s).", type(err).__name__)
    lines = (line.rstrip(" \t") for line in "".join(renderer.chunks).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
