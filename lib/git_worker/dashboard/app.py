"""The full-screen dashboard (Textual): the only module of git-worker that imports it.

Nothing here waits on git or an agent in the UI's thread. A refresh (model.take: the
readers `list` uses) and the conflict forecast run in threads of their own and hand their
result back as a message; a refresh that takes long leaves the last table on
screen, marked stale with its age. Keys run `git worker <command> <id>` — the same code
as the command — as a subprocess: in a thread with the output shown below the table, or,
for the interactive ones (attach, logs, diff), with the dashboard suspended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Log, Static

from git_worker.dashboard import model
from git_worker.errors import WorkerError
from git_worker.registry.record import State
from git_worker.repo import Repo

REFRESH = 1.0  # seconds between refreshes
STALE_AFTER = 3.0  # a table older than this is marked stale (its probe is slow or failing)
FORECAST_GAP = 5.0  # seconds at least between two forecasts (with many agents, refs move often)

# Colour is not the only cue (NO_COLOR turns Textual monochrome): waiting is also bold
# and reversed, failed and vanished bold.
STATE_STYLES = {State.RUNNING: "blue", State.WAITING: "bold reverse yellow", State.EXITED: "green",
                State.FAILED: "bold red", State.VANISHED: "bold red", State.REVIEWED: "green",
                State.MERGED: "dim", State.READY: "dim", State.STOPPED: "dim", State.QUEUED: "dim",
                State.SPAWNING: "yellow", "corrupt": "bold red"}


@dataclass
class Finished:
    argv: list[str]
    code: int
    out: str
    err: str

    def summary(self) -> str:
        """One line: the first line of the error on failure, else the last of the output."""
        err = [line for line in self.err.splitlines() if line.strip()]
        out = [line for line in self.out.splitlines() if line.strip()]
        if self.code and err:
            return err[0]
        return (out or err or [""])[-1]


# What the threads hand back to the UI's thread. Messages, not call_from_thread: one posted
# after the app exited is dropped, and an error in its handler stops the app like any bug
# (terminal restored, traceback shown) instead of vanishing into the thread.
class Refreshed(Message):
    def __init__(self, snapshot: model.Snapshot | None, error: str | None) -> None:
        super().__init__()
        self.snapshot, self.error = snapshot, error


class Forecasted(Message):
    def __init__(self, inputs: dict[str, str], line: model.ForecastLine) -> None:
        super().__init__()
        self.inputs, self.line = inputs, line


class Ran(Message):
    def __init__(self, done: Finished) -> None:
        super().__init__()
        self.done = done


class Runner:
    """Runs what the keys ask for, as the user would type it, in the repository."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd

    def run(self, argv: list[str]) -> Finished:
        """A command that needs no terminal: its output is captured for the message pane.
        In a session of its own, without the terminal: nothing it runs can draw over the
        dashboard or wait for an answer typed there (git's prompts fail instead)."""
        try:
            proc = subprocess.run(argv, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace",
                                  start_new_session=True,
                                  env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        except OSError as e:
            return Finished(argv, 127, "", str(e))
        return Finished(argv, proc.returncode, proc.stdout, proc.stderr)

    def interactive(self, argv: list[str], *, pause: bool) -> int:
        """A command that takes the terminal. ^C is for it, not for the dashboard behind
        it: ignored here while it runs, back to the default in the child."""
        print(f"\n── {' '.join(argv)} ──", flush=True)
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = subprocess.call(argv, cwd=self.cwd,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                    signal.SIG_DFL))
            if pause or code:  # an error (attach to a detached agent…) stays readable
                sys.stdout.write(f"\n[exit {code}; press Enter to return to the dashboard]")
                sys.stdout.flush()
                sys.stdin.readline()
        except OSError as e:
            print(f"cannot run {' '.join(argv)}: {e}", file=sys.stderr)
            code = 127
        finally:
            signal.signal(signal.SIGINT, old)
        return code


class Confirm(ModalScreen[bool]):
    """y runs the action; n or Escape does not."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Static { width: auto; max-width: 90%; padding: 1 2; border: heavy $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"), Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(f"{self.question}  [y/n]", id="question")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Keys(ModalScreen[None]):
    """`?`: every key, from the action table."""

    DEFAULT_CSS = """
    Keys { align: center middle; }
    Keys > Static { width: auto; max-width: 95%; padding: 0 1; border: round $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "close")]

    def compose(self) -> ComposeResult:
        lines = [f"{a.key:>2}  {a.label:<7} git worker {' '.join(a.command)} ID"
                 + ("  (asks first)" if a.destructive else "") for a in model.ACTIONS]
        lines += [" ?  keys", " q  quit (also ^C)", "", "Escape closes this"]
        yield Static("\n".join(lines), id="keys")

    def action_close(self) -> None:
        self.dismiss(None)


class WatchApp(App[int]):
    TITLE = "git worker watch"
    ENABLE_COMMAND_PALETTE = False  # its ^p entry would take room a narrow pane lacks
    # The table takes two thirds of what the one-line parts leave, the log the rest: in
    # 80x24 that is 13 rows and 7, in a 15-row pane still 7 and 4.
    CSS = """
    #status { height: 1; background: $boost; }
    #table { height: 2fr; min-height: 3; }
    #conflicts { height: 1; }
    #log { height: 1fr; min-height: 2; max-height: 16; border-top: solid $primary; }
    #message { height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "leave", "quit"),
        Binding("ctrl+c", "leave", "quit", show=False, priority=True),
        Binding("question_mark", "keys", "keys"),
        *(Binding(a.key, f"act('{a.name}')", a.label, show=a.name in ("attach", "stop"))
          for a in model.ACTIONS),
    ]

    def __init__(self, repo: Repo, *, show_all: bool = False,
                 take: Callable[[], model.Snapshot] | None = None,
                 forecast: Callable[[], model.ForecastLine] | None = None,
                 runner: Runner | None = None) -> None:
        super().__init__()
        self.repo = repo
        self.take = take or (lambda: model.take(repo, show_all=show_all,
                                                selected=self.selected))
        self.forecast = forecast or (lambda: model.conflict_line(repo))
        self.runner = runner or Runner(os.getcwd())
        self.snapshot: model.Snapshot | None = None
        self.error: str | None = None
        self.selected: str | None = None
        self._probe_started: float | None = None
        self._forecast_inputs: dict[str, str] | None = None
        self._forecasting = False
        self._forecast_done = -FORECAST_GAP
        self._cols: tuple[str, ...] = ()
        self._ids: list[str] = []
        self._cells: dict[str, list[str]] = {}  # what the table shows, by worker id
        self._shown: dict[str, Text] = {}  # what each one-line part shows
        self._tail: model.LogTail | None = None

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("loading…", id="status")
        table: DataTable[Any] = DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("conflicts: …", id="conflicts")
        log = Log(id="log", max_lines=1000)
        log.can_focus = False
        yield log
        yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#table", DataTable).focus()
        self._probe()
        self.set_interval(REFRESH, self._tick)

    # -- refreshing -----------------------------------------------------------------
    def _tick(self) -> None:
        if not self.is_running:  # a last tick while it shuts down: its widgets are going
            return
        if self._probe_started is None:
            self._probe()
        self._show_status()
        self._follow_log()

    def _probe(self) -> None:
        """A refresh in a thread; the UI keeps the last table meanwhile. Daemon threads:
        quitting never waits for a git that hangs."""
        self._probe_started = time.monotonic()
        threading.Thread(target=self._probe_thread, daemon=True, name="probe").start()

    def _probe_thread(self) -> None:
        snapshot: model.Snapshot | None = None
        error = None
        try:
            snapshot = self.take()
        except WorkerError as e:  # git failed, a file was unreadable…: the next tick retries
            error = str(e).splitlines()[0]
        except Exception as e:  # a bug: shown (not hidden), and the dashboard goes on
            error = f"{type(e).__name__}: {e}"
        self.post_message(Refreshed(snapshot, error))  # thread-safe; dropped after exit

    def on_refreshed(self, message: Refreshed) -> None:
        if self.is_running:  # not while it shuts down: its widgets are going
            self._apply(message.snapshot, message.error)

    def _apply(self, snapshot: model.Snapshot | None, error: str | None) -> None:
        self._probe_started = None
        self.error = error
        if snapshot is not None:
            self.snapshot = snapshot
            self._show_rows(snapshot.rows)
            if (snapshot.forecast_inputs != self._forecast_inputs and not self._forecasting
                    and time.monotonic() - self._forecast_done >= FORECAST_GAP):
                self._start_forecast(snapshot.forecast_inputs)
        self._show_status()

    def _show_status(self) -> None:
        if self.snapshot is None:
            text = Text(f"refresh failed: {self.error}" if self.error else "reading workers…",
                        style="bold red" if self.error else "")
            self._show("#status", text)
            return
        age = time.monotonic() - self.snapshot.taken
        n = len(self.snapshot.rows)
        text = Text(f"{n} worker{'s' * (n != 1)}")
        if self.error:
            text.append(f"  refresh failed: {self.error}", style="bold red")
        if age > STALE_AFTER:
            why = " (git is slow to answer)" if self._probe_started is not None else ""
            text.append(f"  STALE {int(age)}s{why}", style="bold reverse red")
        self._show("#status", text)

    def _show(self, selector: str, text: Text) -> None:
        """Update a one-line part only when its text changed: Static.update lays the whole
        screen out again, which costs more than the rest of a refresh."""
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            self.query_one(selector, Static).update(text)

    def _show_rows(self, rows: list[dict[str, Any]]) -> None:
        """Rebuild the table when its rows or columns changed, else update only the cells
        that did (a second's refresh of 100 workers changes a few ages)."""
        table: DataTable[Any] = self.query_one("#table", DataTable)
        cols = model.columns(rows)
        ids = [str(r.get("id")) for r in rows]
        cells = {wid: model.cells(r, cols) for wid, r in zip(ids, rows, strict=True)}
        if cols != self._cols or ids != self._ids:
            keep = self._cursor_id()
            table.clear(columns=cols != self._cols)
            if cols != self._cols:
                for c in cols:
                    table.add_column(c, key=c)
            for wid, r in zip(ids, rows, strict=True):
                table.add_row(*self._styled(r, cols, cells[wid]), key=wid)
            self._cols, self._ids = cols, ids
            if keep in ids:
                table.move_cursor(row=ids.index(keep))
        else:
            for wid, r in zip(ids, rows, strict=True):
                shown = self._cells[wid]  # same ids as last time: each was shown
                if cells[wid] == shown:
                    continue
                restyle = cells[wid][1] != shown[1]  # STATE: the row's styles follow it
                for c, value, before in zip(cols, self._styled(r, cols, cells[wid]), shown,
                                            strict=True):
                    if restyle or value.plain != before:
                        # A wider value ("59s" → "1m 0s") may widen its column; the rest
                        # skip the measuring.
                        table.update_cell(wid, c, value,
                                          update_width=len(value.plain) > len(before))
        self._cells = cells
        if not ids:
            self._select(None)
        elif self.selected not in ids:
            self._select(ids[min(table.cursor_row, len(ids) - 1)])

    @staticmethod
    def _styled(row: dict[str, Any], cols: tuple[str, ...], cells: list[str]) -> list[Text]:
        out = []
        state = str(row.get("state"))
        for c, value in zip(cols, cells, strict=True):
            style = ""
            if c == "STATE":
                style = STATE_STYLES.get(state, "")
            elif c == model.NOTE:
                style = "bold yellow" if state == State.WAITING else "yellow"
            out.append(Text(value, style=style, no_wrap=True))
        return out

    def _start_forecast(self, inputs: dict[str, str]) -> None:
        """Only when a branch or a worker's state moved: a forecast is several git merges.
        If they move again meanwhile, a later refresh sees it and starts the next one."""
        self._forecasting = True

        def work() -> None:
            try:
                line = self.forecast()
            except Exception as e:  # the line says so; the dashboard goes on
                line = model.ForecastLine(f"conflicts: unknown ({e})", collides=False)
            self.post_message(Forecasted(inputs, line))

        threading.Thread(target=work, daemon=True, name="forecast").start()

    def on_forecasted(self, message: Forecasted) -> None:
        if self.is_running:  # not while it shuts down: its widgets are going
            self._show_forecast(message.inputs, message.line)

    def _show_forecast(self, inputs: dict[str, str], line: model.ForecastLine) -> None:
        self._forecasting = False
        self._forecast_done = time.monotonic()
        self._forecast_inputs = inputs
        self._show("#conflicts", Text(line.text, style="bold red" if line.collides else "",
                                      no_wrap=True, overflow="ellipsis"))

    # -- the selected worker's log ----------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._select(event.row_key.value)

    def _select(self, worker_id: str | None) -> None:
        if worker_id == self.selected:
            return
        self.selected = worker_id
        log = self.query_one("#log", Log)
        log.clear()
        log.border_title = f"log: {worker_id}" if worker_id else "log"
        self._tail = model.LogTail(model.log_path(self.repo, worker_id)) if worker_id else None
        self._follow_log()

    def _follow_log(self) -> None:
        if self._tail is not None:
            text = self._tail.read()  # a local file, read from where it was left
            if text:
                self.query_one("#log", Log).write(model.printable(text))  # agent's output

    # -- keys -------------------------------------------------------------------------
    def _cursor_id(self) -> str | None:
        """The worker under the cursor, read from the table itself: the highlight message
        that updates `selected` may still be queued behind the key that asks."""
        table: DataTable[Any] = self.query_one("#table", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def action_keys(self) -> None:
        self.push_screen(Keys())

    def action_act(self, name: str) -> None:
        action = model.ACTION_BY_NAME[name]
        worker_id = self._cursor_id()
        if worker_id is None:
            self._message("no worker selected")
            return
        if not action.destructive:
            self._run(action, worker_id)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(action, worker_id)
            else:
                self._message(f"{action.label} {worker_id}: not done")

        self.push_screen(Confirm(f"{action.label} {worker_id}?"), answered)

    def _run(self, action: model.Action, worker_id: str) -> None:
        argv = action.argv(worker_id)
        shown = " ".join(argv)
        if action.interactive:
            try:
                with self.suspend():
                    code = self.runner.interactive(argv, pause=action.pause)
            except SuspendNotSupported:
                self._message(f"this terminal cannot be handed over; run: {shown}")
                return
            self._message(f"$ {shown}  → exit {code}")
            self._refresh_now()
            return
        self._message(f"$ {shown}  … running")

        def work() -> None:
            self.post_message(Ran(self.runner.run(argv)))

        threading.Thread(target=work, daemon=True, name=action.name).start()

    def on_ran(self, message: Ran) -> None:
        if self.is_running:  # not while it shuts down: its widgets are going
            self._finished(message.done)

    def _finished(self, done: Finished) -> None:
        line = done.summary()
        self._message(f"$ {' '.join(done.argv)}  → exit {done.code}" + (f": {line}" if line
                                                                         else ""),
                      error=done.code != 0)
        self._refresh_now()

    def _refresh_now(self) -> None:
        if self._probe_started is None:
            self._probe()

    def _message(self, text: str, *, error: bool = False) -> None:
        # printable: a command's output may quote an agent's or a branch's text.
        self._show("#message", Text(model.printable(text), style="red" if error else ""))

    def action_leave(self) -> None:
        self.exit(0)


def run(repo: Repo, *, show_all: bool) -> int:
    app = WatchApp(repo, show_all=show_all)
    app.run()
    if app.return_code:
        # Textual has given the terminal back and printed the traceback; the dashboard
        # never exits non-zero on purpose, so this is a bug (the CLI exits 3).
        raise RuntimeError("the dashboard stopped on an unexpected error (shown above)")
    return 0
