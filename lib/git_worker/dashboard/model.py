"""What the dashboard shows and what its keys run — no Textual here.

`watch --once` prints from this module alone, so scripts never pay for Textual; the
full-screen app (app.py) draws the same cells and runs the same action table.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from git_worker import output, refnames
from git_worker.registry import store
from git_worker.registry.record import State
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

TAIL_BYTES = 64 * 1024  # how much of a log a newly selected worker shows at first


@dataclass(frozen=True)
class Action:
    """One key of the dashboard: what it runs is `git worker <command…> <id>`."""

    key: str
    name: str
    label: str
    command: tuple[str, ...]
    destructive: bool = False  # asks before it runs
    interactive: bool = False  # takes the terminal (the dashboard suspends meanwhile)
    pause: bool = False  # after an interactive one: wait for Enter before coming back

    def argv(self, worker_id: str) -> list[str]:
        return ["git", "worker", *self.command, worker_id]


# The one table of keys: the footer, `?`, the bindings and the man page come from here.
ACTIONS: tuple[Action, ...] = (
    Action("a", "attach", "attach", ("attach",), interactive=True),
    Action("l", "logs", "logs", ("logs", "-f"), interactive=True, pause=True),
    Action("s", "start", "start", ("start",)),
    Action("x", "stop", "stop", ("stop",), destructive=True),
    Action("r", "review", "review", ("review",)),
    Action("d", "diff", "diff", ("diff",), interactive=True, pause=True),
    Action("u", "sync", "sync", ("sync",)),
    Action("m", "merge", "merge", ("merge",), destructive=True),
    Action("L", "land", "land", ("land",), destructive=True),
    Action("D", "rm", "rm", ("rm",), destructive=True),
)
ACTION_BY_NAME = {a.name: a for a in ACTIONS}

COLUMNS = ("ID", "STATE", "AGENT", "AGE", "AHEAD", "BEHIND", "DIRTY", "REVIEW")
HOST = "HOST"  # shown only when the workers run on more than one host
NOTE = "NOTE"  # a waiting agent's message, else the first problem


@dataclass
class Snapshot:
    """One refresh: the rows `list --json` would print, and what the conflict forecast
    depends on — every branch tip and each worker's state — compared between refreshes:
    the forecast (several git merges) is recomputed only when one of them moved."""

    rows: list[dict[str, Any]]
    forecast_inputs: dict[str, str] = field(default_factory=dict)
    taken: float = field(default_factory=time.monotonic)


def take(repo: Repo, *, show_all: bool, selected: str | None = None) -> Snapshot:
    """The rows now: two `git for-each-ref` in all, and one `git status` — the selected
    worker's, for its DIRTY cell (a status per worker each second is what makes other
    tools slow; `list` runs none)."""
    from git_worker import listing

    tips = repo.ref_table(refnames.HEADS, refnames.REMOTES)
    rows = listing.collect(repo)
    for row in rows:
        if selected is not None and row.get("id") == selected and row.get("state") != "corrupt":
            row["uncommitted"] = _uncommitted(repo, selected)
    inputs = {**tips, **{refnames.REGISTRY + str(r.get("id")): str(r.get("state"))
                         for r in rows}}
    if not show_all:
        rows = [r for r in rows if r.get("state") != State.MERGED or r.get("problems")]
    return Snapshot(rows, inputs)


def _uncommitted(repo: Repo, worker_id: str) -> bool | None:
    from git_worker import probe

    found = store.read(repo, worker_id)
    return probe.uncommitted(repo, found.record) if isinstance(found, store.Entry) else None


def several_hosts(rows: list[dict[str, Any]]) -> bool:
    return len({r.get("host") for r in rows if r.get("host")}) > 1


def columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    return (*COLUMNS, HOST, NOTE) if several_hosts(rows) else (*COLUMNS, NOTE)


def cells(row: dict[str, Any], cols: tuple[str, ...]) -> list[str]:
    """A row's cells as plain text; a field a record does not have shows as "-"."""
    state = str(row.get("state") or "-")
    if state in (State.FAILED, State.STOPPED) and row.get("exit_code") is not None:
        state += f" ({row['exit_code']})"
    value = {
        "ID": str(row.get("id")),
        "STATE": state,
        "AGENT": row.get("agent") or "-",
        "AGE": output.age(row["created_at"]) if row.get("created_at") else "-",
        "AHEAD": _count(row.get("ahead")),
        "BEHIND": _count(row.get("behind")),
        "DIRTY": _yes_no(row.get("uncommitted")),
        "REVIEW": row.get("verdict") or "-",
        HOST: row.get("host") or "-",
        NOTE: note(row),
    }
    # Records are untrusted (anyone who can write a ref can forge one): no cell may carry
    # a terminal escape sequence or a line break.
    return [printable(" ".join(str(value[c]).split())) for c in cols]


def _yes_no(flag: object) -> str:
    return "yes" if flag is True else "no" if flag is False else "-"


def _count(n: object) -> str:
    return str(n) if isinstance(n, int) and not isinstance(n, bool) else "-"


def note(row: dict[str, Any]) -> str:
    """What a reader should see first: the waiting agent's question, else a problem."""
    message = row.get("message")
    if row.get("state") == State.WAITING and message:
        return str(message)
    problems = row.get("problems") or []
    if not problems:
        return ""
    more = f" (+{len(problems) - 1})" if len(problems) > 1 else ""
    return f"! {problems[0]}{more}"


# What an agent's output may hold that must not reach the terminal as is: escape sequences
# (CSI colours and cursor moves, OSC titles and clipboard writes, others) are dropped,
# other control characters shown as U+FFFD. Tabs and line feeds stay.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without anything a terminal would take as a command."""
    text = _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROLS.sub("\ufffd", text)


def text_table(rows: list[dict[str, Any]]) -> str:
    """What `watch --once` prints: the dashboard's table as aligned plain text."""
    cols = columns(rows)
    body = [cells(r, cols) for r in rows]
    return output.table(cols, body)


class ForecastLine(NamedTuple):
    text: str
    collides: bool


def conflict_line(repo: Repo) -> ForecastLine:
    """The forecast in one line: which workers collide with their target or each other."""
    from git_worker import conflicts

    fc = conflicts.forecast(repo, [])
    against = [c.id for c in fc.workers if not c.merged and not c.clean]
    pairs = [f"{p.a}↔{p.b}" for p in fc.pairs if not p.clean]
    if not against and not pairs:
        waiting = sum(1 for c in fc.workers if not c.merged)
        return ForecastLine(f"conflicts: none ({waiting} worker(s) with work to land)", False)
    parts = pairs + [f"{wid}↔{refnames.short(_target(fc, wid))}" for wid in against]
    return ForecastLine(printable("conflicts: " + ", ".join(parts)), True)


def _target(fc: Any, worker_id: str) -> str:
    return str(next(c.target for c in fc.workers if c.id == worker_id))


def log_path(repo: Repo, worker_id: str) -> str:
    return RuntimeDir.of(repo, worker_id).agent_log


class LogTail:
    """A log followed incrementally: the first read gives the last TAIL_BYTES (from a
    line start), each later read only what was appended since. A log that shrank (a
    restarted agent truncates it) is read again from its start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.position: int | None = None
        # Incremental: a character split between two reads is decoded whole, once.
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode

    def read(self) -> str:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if self.position is not None and size >= self.position:
                    f.seek(self.position)
                    data = f.read()
                else:
                    start = max(0, size - TAIL_BYTES) if self.position is None else 0
                    f.seek(start)
                    data = f.read()
                    if start:  # from the first whole line on
                        data = data.partition(b"\n")[2]
                self.position = f.tell()
        except FileNotFoundError:
            return ""
        return self._decode(data)
