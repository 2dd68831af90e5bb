"""Human output: aligned tables, durations in human units, colour only on a terminal."""

from __future__ import annotations

import os
import sys

from git_worker import compact_json

# typing only for annotations: importing it costs ~5 ms on every list and show. Nor json
# and re at the top: `list --json` needs neither (see compact_json and visible).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Sequence
    from datetime import datetime
    from typing import Any, TextIO


def use_colour(stream: TextIO = sys.stdout) -> bool:
    """Colour only on a terminal, and never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, stream: TextIO = sys.stdout) -> str:
    codes = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}
    return f"\033[{codes[colour]}m{text}\033[0m" if use_colour(stream) else text


# What a terminal acts on instead of showing: C0 controls (ESC starts sequences that retitle
# the window, clear the screen, move the cursor up to overwrite lines), DEL, and C1
# controls (U+009B is a one-character CSI on some terminals).
_CONTROL_CODES = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
# str.translate tables (C, no regular expression): each control to its escape.
_SHOWN = {c: _NAMED.get(chr(c)) or f"\\x{c:02x}" for c in _CONTROL_CODES}
_SHOWN_BUT_LINES = {c: e for c, e in _SHOWN.items() if chr(c) not in "\n\t"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    code = ord(c) - 0xDC00 if ord(c) >= 0xDC00 else ord(c)  # a raw byte, as \x9b
    return _NAMED.get(c) or f"\\x{code:02x}"


def visible(text: object, *, lines: bool = False) -> str:
    """Text that came from outside (bd, agents, records, argv, git) made safe to print on
    a terminal: every control character shown as an escape (ESC as \\x1b), so none can
    retitle, clear or rewrite the screen. With ``lines``, newlines and tabs stay (a
    message of several lines); otherwise they are shown too (a table cell, one line)."""
    return str(text).translate(_SHOWN_BUT_LINES if lines else _SHOWN)


def visible_bytes(data: bytes) -> bytes:
    """A file shown as it is (an agent's log, a prompt), for a terminal: lines, tabs and
    colours (SGR) kept, every other control character shown as an escape."""
    import re

    # In bytes decoded with surrogateescape, a lone C1 byte (not UTF-8) is U+DC80-U+DC9F.
    sgr_or_control = re.compile(r"(\033\[[0-9;]*m)|[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udc9f]")
    text = data.decode("utf-8", errors="surrogateescape")
    shown = sgr_or_control.sub(lambda m: m.group(1) or _escape(m), text)
    return shown.encode("utf-8", errors="surrogateescape")


def width(text: str) -> int:
    """How many columns ``text`` takes on a terminal (colour codes take none)."""
    if "\033" not in text:
        return len(text)
    import re  # coloured cells only: on a terminal

    return len(re.sub(r"\033\[[0-9;]*m", "", text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on what is visible, so coloured cells line up with plain ones."""
    widths = [max(width(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c) + " " * (w - width(str(c))) for c, w in zip(row, widths, strict=False)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def age(timestamp: str, now: datetime | None = None) -> str:
    from datetime import UTC, datetime  # here: list --json never needs it

    try:
        # fromisoformat is C; strptime would import _strptime (and calendar, locale).
        then = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return "?"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    return duration(max(0, seconds))


def duration(seconds: float) -> str:
    """Two units at most, the larger first: 45s, 3m 12s, 2h 5m, 3d 4h."""
    total = int(seconds)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (unit, size) in enumerate(units[:-1]):
        if total >= size:
            big, rest = divmod(total, size)
            small_unit, small_size = units[i + 1]
            small = rest // small_size
            return f"{big}{unit} {small}{small_unit}" if small else f"{big}{unit}"
    return f"{total}s"


def print_json(value: Any) -> None:
    """JSON on stdout: an object indented; an array one compact element per line.

    Arrays (list --json of many workers) skip indentation because only the unindented
    encoder is C: indenting 100 records costs more than everything else list does.
    """
    if isinstance(value, list):
        items = ",\n".join(compact_json.dumps(v) for v in value)
        sys.stdout.write(f"[\n{items}\n]\n" if value else "[]\n")
    else:
        sys.stdout.write(compact_json.dumps(value, indent=2) + "\n")


def relpath(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path


class Progress:
    """One line per item of a long operation (spawning several workers): on a terminal,
    "spawning w1..." shows while it happens and is replaced by the outcome; elsewhere
    (a pipe, a log) only the outcomes are printed, one line each."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.live = stream.isatty() and os.environ.get("TERM") != "dumb"
        self._pending = False

    def start(self, text: str) -> None:
        if self.live:
            self.stream.write(paint(f"{text}...", "dim", self.stream))
            self.stream.flush()
            self._pending = True

    def clear(self) -> None:
        """Take the pending line away (before an error goes to stderr, say)."""
        if self._pending:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._pending = False

    def done(self, text: str) -> None:
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()


def size(n: int) -> str:
    """Bytes for humans, as du -h would say: 0 B, 812 KiB, 1.4 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") or value >= 10 else \
                f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
