"""git worker watch: the dashboard (Textual's own harness, and a real terminal in tmux),
`watch --once`, and the promise that no other command pays for Textual."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, release, wait_for

sys.path.insert(0, str(CHECKOUT / "lib"))

from git_worker.dashboard import model  # noqa: E402
from git_worker.repo import Repo  # noqa: E402

IDS = ("w1", "w2", "w3")


# --- what every other command must not pay for ------------------------------------------


def imported(sandbox: Sandbox, repo: GitRepo, *argv: str,
             env: dict[str, str] | None = None) -> str:
    """The modules a git-worker process imported (python -X importtime's report)."""
    r = sandbox.run(sys.executable, "-X", "importtime", CHECKOUT / "git-worker", *argv,
                    cwd=repo.path, env=env)
    assert r.code == 0, r.err
    return "\n".join(line.rsplit("|", 1)[-1].strip() for line in r.err.splitlines()
                     if line.startswith("import time:"))


def test_list_completion_and_once_never_import_textual(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    completion = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
                  "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
                  "_ARGCOMPLETE_STDOUT_FILENAME": str(sandbox.root / "completion.out")}
    runs = {
        "list": imported(sandbox, repo, "list"),
        "list --json": imported(sandbox, repo, "list", "--json"),
        "watch --once": imported(sandbox, repo, "watch", "--once"),
        "complete a command": imported(sandbox, repo, env={
            **completion, "COMP_LINE": "git-worker wa", "COMP_POINT": "13"}),
        "complete an id": imported(sandbox, repo, env={
            **completion, "COMP_LINE": "git-worker watch --", "COMP_POINT": "19"}),
    }
    assert (sandbox.root / "completion.out").read_text()  # the completion did answer
    assert "git_worker.commands.list" in runs["list"]  # the report is read right
    heavy = {name: [m for m in mods.split("\n") if m.split(".")[0] in ("textual", "rich")]
             for name, mods in runs.items()}
    assert heavy == {name: [] for name in runs}


# --- watch --once ---------------------------------------------------------------------------


def test_once_prints_the_table_and_the_forecast(repo: GitRepo, held: Path) -> None:
    assert repo.ok("watch", "--once").out == "no workers; start one with: git worker spawn ID\n"
    repo.ok("spawn", *IDS)
    repo.work("w4", "a.txt", "w4\n")
    repo.work("w5", "a.txt", "w5\n")
    release(repo, "w2")
    repo.wait("w2", "exited")
    lines = repo.ok("watch", "--once").out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "AGENT", "AGE", "AHEAD", "BEHIND", "DIRTY",
                                "REVIEW", "NOTE"]
    states = {line.split()[0]: line.split()[1] for line in lines[1:6]}
    assert states == {"w1": "running", "w2": "exited", "w3": "running", "w4": "ready",
                      "w5": "ready"}
    assert lines[6:] == ["conflicts: w4↔w5"]
    # Merged workers only with --all, as in list.
    repo.ok("merge", "w4")
    assert "w4" not in repo.ok("watch", "--once").out.split()
    assert "merged" in [line.split()[1] for line in repo.ok("watch", "--once", "--all").out
                        .splitlines() if line.startswith("w4 ")]
    # A column whose field the record lacks says "-", never a made-up value.
    for line in lines[1:6]:
        fields = line.split()
        assert fields[2] in ("held", "-") and re.fullmatch(r"\d+s", fields[3])


def test_cells_show_what_the_record_has_and_dash_for_what_it_lacks() -> None:
    older = {"id": "w1", "state": "running", "agent": "claude", "behind": 2, "problems": []}
    cols = model.columns([older])
    assert model.cells(older, cols) == ["w1", "running", "claude", "-", "-", "2", "-", "-", ""]
    newer = {"id": "w2", "state": "waiting", "agent": "codex", "ahead": 3, "behind": 0,
             "uncommitted": True, "verdict": "blocked", "host": "box",
             "message": "May I run\n  rm -rf build?", "problems": ["tmux session x is gone"],
             "created_at": "2000-01-01T00:00:00+00:00"}
    assert model.cells(newer, cols)[1:] == ["waiting", "codex", model.cells(newer, cols)[3],
                                            "3", "0", "yes", "blocked", "May I run rm -rf build?"]
    assert model.cells(newer, cols)[3].endswith("d") or "d " in model.cells(newer, cols)[3]
    assert model.note({**newer, "state": "running"}) == "! tmux session x is gone"
    forged = {**newer, "message": "\x1b]0;pwned\x07hi\x1b[2J there\r\nnow\x9b"}
    assert model.cells(forged, cols)[-1] == "hi there now\ufffd"
    # HOST only when the workers run on more than one host.
    assert model.HOST not in model.columns([newer, older])
    both = [newer, {**older, "host": "other"}]
    assert model.columns(both)[-2:] == (model.HOST, model.NOTE)
    assert model.cells(both[1], model.columns(both))[-2] == "other"


def test_the_selected_worker_says_whether_it_has_uncommitted_changes(repo: GitRepo,
                                                                    inside: Repo) -> None:
    """DIRTY costs a `git status`: the dashboard runs one a refresh, for the selected
    worker alone; the others show "-" (unknown), never a guess."""
    repo.ok("spawn", "w1", "w2", "--no-launch")
    (repo.workers_dir / "w1" / "notes.txt").write_text("not committed\n")
    rows = {r["id"]: r for r in model.take(inside, show_all=False, selected="w1").rows}
    assert rows["w1"]["uncommitted"] is True and rows["w2"]["uncommitted"] is None
    rows = {r["id"]: r for r in model.take(inside, show_all=False, selected="w2").rows}
    assert rows["w2"]["uncommitted"] is False and rows["w1"]["uncommitted"] is None
    assert model.cells(rows["w2"], model.columns([rows["w2"]]))[6] == "no"


def test_log_tail_reads_the_end_then_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    tail = model.LogTail(str(log))
    assert tail.read() == ""  # no log yet
    log.write_bytes(b"x" * (model.TAIL_BYTES + 10) + b"\nlast line\n")
    assert tail.read() == "last line\n"  # only the tail, from a whole line
    with log.open("ab") as f:
        f.write("caf\u00e9".encode()[:-1])  # half of the é
    assert tail.read() == "caf"
    with log.open("ab") as f:
        f.write("\u00e9".encode()[1:] + b" done\n")
    assert tail.read() == "\u00e9 done\n"
    assert tail.read() == ""
    log.write_bytes(b"restarted\n")  # truncated: read again from the start
    assert tail.read() == "restarted\n"


# --- the dashboard in Textual's harness -----------------------------------------------------


@pytest.fixture
def inside(sandbox: Sandbox, repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """This process in the sandbox's world (its env, inside the repository): the app's
    refresh runs in-process, its actions as `git worker` subprocesses found on PATH."""
    import os

    for key in list(os.environ):
        if key not in sandbox.env:
            monkeypatch.delenv(key)
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(repo.path)
    return Repo.discover()


class Recorder:
    """A runner that records each argv; with ``real``, also runs it for real."""

    def __init__(self, real: bool = False) -> None:
        from git_worker.dashboard.app import Finished, Runner

        self.argvs: list[list[str]] = []
        self.real = Runner(".") if real else None
        self.finished = Finished

    def run(self, argv: list[str]) -> Any:
        self.argvs.append(argv)
        return self.real.run(argv) if self.real else self.finished(argv, 0, "done", "")

    def interactive(self, argv: list[str], *, pause: bool) -> int:
        self.argvs.append(argv)
        return 0


def table(app: Any) -> dict[str, dict[str, str]]:
    """What the table shows: id → column → text."""
    from textual.widgets import DataTable

    t = app.query_one("#table", DataTable)
    cols = [str(c.label) for c in t.ordered_columns]
    return {str(row.key.value): dict(zip(cols, (str(c) for c in t.get_row(row.key)),
                                         strict=True))
            for row in t.ordered_rows}


def text_of(app: Any, selector: str) -> str:
    return str(app.query_one(selector).render())


def dashboard(repo: Repo, test: Callable[[Any, Any], Any], *, size: tuple[int, int] = (80, 24),
              **kwargs: Any) -> Any:
    from git_worker.dashboard.app import WatchApp

    app = WatchApp(repo, **kwargs)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await test(app, pilot)

    asyncio.run(main())
    return app


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def test_rows_appear_and_states_change_as_agents_exit(repo: GitRepo, held: Path,
                                                      inside: Repo) -> None:
    repo.ok("spawn", *IDS)

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: set(table(app)) == set(IDS))
        assert {r["STATE"] for r in table(app).values()} == {"running"}
        release(repo, "w2")
        await until(pilot, lambda: table(app)["w2"]["STATE"] == "exited")
        assert table(app)["w1"]["STATE"] == "running"
        release(repo, "w3")
        await until(pilot, lambda: table(app)["w3"]["STATE"] == "exited")
        repo.ok("spawn", "w4", "--no-launch")
        await until(pilot, lambda: table(app).get("w4", {}).get("STATE") == "ready")
        assert "4 workers" in text_of(app, "#status")

    dashboard(inside, test)


def test_the_log_pane_follows_the_selected_worker(repo: GitRepo, held: Path,
                                                 inside: Repo) -> None:
    repo.ok("spawn", "w1", "w2")

    async def test(app: Any, pilot: Any) -> None:
        from textual.widgets import Log

        log = app.query_one("#log", Log)
        await until(pilot, lambda: "held: started w1" in "\n".join(log.lines))
        release(repo, "w1")
        await until(pilot, lambda: "held: released" in "\n".join(log.lines))
        await pilot.press("down")
        await until(pilot, lambda: "held: started w2" in "\n".join(log.lines))
        assert "held: started w1" not in "\n".join(log.lines)
        assert app.selected == "w2"

    dashboard(inside, test)


HOSTILE = r"""
printf 'plain\n\033]0;pwned\007\033[2J\033[31mred\033[0m\n\033]52;c;cHduZWQ=\007clip\n'
while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
"""


@pytest.fixture
def hostile(sandbox: Sandbox, repo: GitRepo) -> Path:
    """An agent that prints terminal escapes: a title, a clear-screen, a clipboard write."""
    path = sandbox.script("hostile-agent", HOSTILE)
    repo.git("config", "worker.agent", "hostile")
    repo.git("config", "worker.agent.hostile.command", str(path))
    return path


def test_an_agents_escape_sequences_never_reach_the_terminal(repo: GitRepo, hostile: Path,
                                                            inside: Repo) -> None:
    repo.ok("spawn", "w1")
    wait_for(lambda: "clip" in (repo.path / ".git/workers/w1/agent.log").read_text(
        errors="replace") if (repo.path / ".git/workers/w1/agent.log").exists() else False)

    async def test(app: Any, pilot: Any) -> None:
        from textual.widgets import Log

        log = app.query_one("#log", Log)
        await until(pilot, lambda: "clip" in "\n".join(log.lines))
        assert [line for line in log.lines if line] == ["plain", "red", "clip"]

    dashboard(inside, test)


def test_every_key_runs_its_command_from_the_action_table(repo: GitRepo, inside: Repo,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    recorder = Recorder()

    async def test(app: Any, pilot: Any) -> None:
        monkeypatch.setattr(app, "suspend", contextlib.nullcontext)  # no terminal to hand over
        await until(pilot, lambda: "w1" in table(app))
        for action in model.ACTIONS:
            await pilot.press(action.key)
            if action.destructive:
                await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
                await pilot.press("y")
            await until(pilot, lambda a=action: recorder.argvs[-1:] == [a.argv("w1")])
        expected = [["git", "worker", *a.command, "w1"] for a in model.ACTIONS]
        assert recorder.argvs == expected
        assert expected[:3] == [["git", "worker", "attach", "w1"],
                                ["git", "worker", "logs", "-f", "w1"],
                                ["git", "worker", "start", "w1"]]

    dashboard(inside, test, runner=recorder)


def test_destructive_keys_ask_first_and_no_does_nothing(repo: GitRepo, held: Path,
                                                       inside: Repo) -> None:
    repo.ok("spawn", "w1", "w2")
    recorder = Recorder(real=True)

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: set(table(app)) == {"w1", "w2"})
        for key in ("x", "D", "m", "L"):
            await pilot.press(key)
            await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
            assert "w1?" in text_of(app.screen, "#question")
            await pilot.press("n" if key in "xm" else "escape")
            await until(pilot, lambda: type(app.screen).__name__ != "Confirm")
        await pilot.pause(0.5)
        assert recorder.argvs == []
        assert repo.show("w1")["state"] == "running"
        # The cursor decides, even when the highlight message is still on its way.
        await pilot.press("down", "x")
        await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
        assert "stop w2?" in text_of(app.screen, "#question")
        await pilot.press("y")
        await until(pilot, lambda: table(app)["w2"]["STATE"].startswith("stopped"))
        await until(pilot, lambda: "stop w2  → exit 0" in text_of(app, "#message"))
        assert recorder.argvs == [["git", "worker", "stop", "w2"]]
        assert repo.record("w2")["state"] == "stopped"
        # rm, for real: the record, branch and worktree are gone.
        await pilot.press("D")
        await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
        await pilot.press("y")
        await until(pilot, lambda: "rm w2  → exit 0" in text_of(app, "#message"))
        await until(pilot, lambda: "w2" not in table(app))
        assert "refs/workers/w2" not in repo.refs()
        assert "refs/heads/worker/w2" not in repo.refs()
        assert not (repo.workers_dir / "w2").exists()
        # A command that fails says so, with its error.
        await pilot.press("D")
        await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
        await pilot.press("y")
        await until(pilot, lambda: "exit 1" in text_of(app, "#message"))
        assert "exit 1: error: w1: " in text_of(app, "#message")  # rm refuses: it runs
        assert repo.show("w1")["state"] == "running"

    dashboard(inside, test, runner=recorder)


def test_a_waiting_agent_stands_out(sandbox: Sandbox, repo: GitRepo, held: Path,
                                    inside: Repo) -> None:
    # A stand-in agent that reports "waiting" through the hook git-worker ships.
    hook = CHECKOUT / "lib" / "git_worker" / "hooks" / "claude-code" / "event"
    asking = sandbox.script("asking-agent", f"""
        printf '{{"message": "May I delete build/?"}}' | {hook} waiting
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent.asking.command", str(asking))
    repo.ok("spawn", "w1")
    repo.ok("spawn", "w2", "-a", "asking")
    repo.wait("w2", "waiting")

    async def test(app: Any, pilot: Any) -> None:
        from textual.widgets import DataTable

        await until(pilot, lambda: table(app).get("w2", {}).get("STATE") == "waiting")
        t = app.query_one("#table", DataTable)
        state = {key: t.get_row(key)[1] for key in ("w1", "w2")}
        assert "reverse" in str(state["w2"].style)  # stands out without colour too
        assert "reverse" not in str(state["w1"].style)
        # The agent's message, once the record's `message` field carries it; never made up.
        assert table(app)["w2"]["NOTE"] in ("May I delete build/?", "")

    dashboard(inside, test)


def test_keys_and_quit(repo: GitRepo, inside: Repo) -> None:
    repo.ok("spawn", "w1", "--no-launch")

    async def test(app: Any, pilot: Any) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: type(app.screen).__name__ == "Keys")
        shown = text_of(app.screen, "#keys")
        for action in model.ACTIONS:
            assert f"{action.label}" in shown and " ".join(action.command) in shown
        assert shown.count("(asks first)") == 4
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "Keys")
        await pilot.press("q")

    app = dashboard(inside, test)
    assert app.return_code == 0


def test_a_slow_refresh_shows_stale_and_the_ui_still_answers(repo: GitRepo,
                                                             inside: Repo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    gate = threading.Event()
    calls = []

    def take() -> model.Snapshot:
        calls.append(1)
        if len(calls) > 1:
            gate.wait(120)  # a git that hangs
        return model.take(inside, show_all=False)

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: "w1" in table(app))
        await until(pilot, lambda: "STALE" in text_of(app, "#status"))
        assert "slow" in text_of(app, "#status")
        assert "w1" in table(app)  # the last table stays
        await pilot.press("question_mark")  # the UI answers meanwhile
        await until(pilot, lambda: type(app.screen).__name__ == "Keys")
        await pilot.press("escape")
        gate.set()
        await until(pilot, lambda: "STALE" not in text_of(app, "#status"))

    try:
        dashboard(inside, test, take=take)
    finally:
        gate.set()


def test_a_failing_refresh_is_shown_and_the_dashboard_goes_on(repo: GitRepo,
                                                              inside: Repo) -> None:
    from git_worker.errors import WorkerError

    repo.ok("spawn", "w1", "--no-launch")
    fail = threading.Event()

    def take() -> model.Snapshot:
        if fail.is_set():
            raise WorkerError("cannot read refs/workers")
        return model.take(inside, show_all=False)

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: "w1" in table(app))
        fail.set()
        await until(pilot, lambda: "refresh failed: cannot read refs/workers"
                    in text_of(app, "#status"))
        assert "w1" in table(app)
        fail.clear()
        await until(pilot, lambda: "refresh failed" not in text_of(app, "#status"))

    dashboard(inside, test, take=take)


def test_the_forecast_is_recomputed_only_when_a_branch_moves(repo: GitRepo,
                                                             inside: Repo) -> None:
    repo.work("w1", "a.txt", "one\n")
    repo.work("w2", "b.txt", "two\n")
    forecasts: list[model.ForecastLine] = []

    def forecast() -> model.ForecastLine:
        forecasts.append(model.conflict_line(inside))
        return forecasts[-1]

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: text_of(app, "#conflicts").startswith("conflicts: none"))
        taken = app.snapshot.taken
        await until(pilot, lambda: app.snapshot.taken > taken + 2)  # refreshes went by
        assert len(forecasts) == 1
        repo.work("w2", "a.txt", "not one\n")  # w2's branch moves, and now collides
        await until(pilot, lambda: "w1↔w2" in text_of(app, "#conflicts"))
        assert len(forecasts) == 2
        assert forecasts[-1] == ("conflicts: w1↔w2", True)

    dashboard(inside, test, forecast=forecast)


def test_a_cell_that_grows_widens_its_column(repo: GitRepo, inside: Repo) -> None:
    from datetime import UTC, datetime, timedelta

    repo.ok("spawn", "w1", "--no-launch")
    age = [timedelta(seconds=5)]

    def take() -> model.Snapshot:
        snapshot = model.take(inside, show_all=False)
        for row in snapshot.rows:
            row["created_at"] = (datetime.now(UTC) - age[0]).isoformat()
        return snapshot

    async def test(app: Any, pilot: Any) -> None:
        from textual.widgets import DataTable

        await until(pilot, lambda: table(app).get("w1", {}).get("AGE", "").endswith("s"))
        age[0] = timedelta(hours=2, minutes=5)
        await until(pilot, lambda: table(app)["w1"]["AGE"] == "2h 5m")
        t = app.query_one("#table", DataTable)
        await until(pilot, lambda: t.columns["AGE"].content_width >= len("2h 5m"))

    dashboard(inside, test, take=take)


@pytest.mark.parametrize("size", [(80, 24), (40, 12)])
def test_small_terminals_and_no_color(repo: GitRepo, inside: Repo,
                                      monkeypatch: pytest.MonkeyPatch,
                                      size: tuple[int, int]) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    repo.ok("spawn", "w1", "w2", "--no-launch")

    async def test(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: set(table(app)) == {"w1", "w2"})
        assert app.no_color  # Textual draws in monochrome
        screen = app.export_screenshot()
        assert "w1" in screen and "ready" in screen

    dashboard(inside, test, size=size)


# --- a real terminal ---------------------------------------------------------------------


@pytest.fixture
def terminal(sandbox: Sandbox, repo: GitRepo) -> Iterator[Callable[[], str]]:
    """An 80×24 tmux pane with a plain shell in the repository; yields its screen reader."""
    r = sandbox.tmux("new-session", "-d", "-s", "term", "-x", "80", "-y", "24",
                     "-c", str(repo.path), "env PS1=shell: bash --norc --noprofile")
    assert r.code == 0, r.err
    sandbox.tmux("set-option", "-t", "term", "status", "off")

    def screen() -> str:
        return sandbox.tmux("capture-pane", "-p", "-t", "term").out

    yield screen
    sandbox.tmux("kill-session", "-t", "term")


def state_on_screen(screen: str, worker_id: str) -> str | None:
    for line in screen.splitlines():
        fields = line.split()
        if fields[:1] == [worker_id] and len(fields) > 1:
            return fields[1]
    return None


def on_screen(terminal: Callable[[], str], predicate: Callable[[str], bool],
              timeout: float = 60) -> None:
    """Wait until the screen satisfies ``predicate``; fail showing the screen."""
    deadline = time.monotonic() + timeout
    while not predicate(screen := terminal()):
        assert time.monotonic() < deadline, f"not on screen in time:\n{screen}"
        time.sleep(0.1)


def prompt_is_back(screen: str) -> bool:
    return screen.rstrip().splitlines()[-1:] == ["shell:"]


def test_in_a_real_terminal_states_change_and_q_leaves_a_usable_shell(
        sandbox: Sandbox, repo: GitRepo, held: Path, terminal: Callable[[], str]) -> None:
    repo.ok("spawn", *IDS)
    keys = ("send-keys", "-t", "term")
    saved = sandbox.root / "stty"
    sandbox.tmux(*keys, f"stty -g > {saved}.before; git worker watch", "Enter")
    on_screen(terminal, lambda screen: all(state_on_screen(screen, i) == "running" for i in IDS))
    release(repo, "w1")
    on_screen(terminal, lambda screen: state_on_screen(screen, "w1") == "exited")
    release(repo, "w3")
    on_screen(terminal, lambda screen: state_on_screen(screen, "w3") == "exited")
    assert state_on_screen(terminal(), "w2") == "running"
    # l: the dashboard steps aside for `git worker logs -f w1` (w1 has exited: it ends).
    sandbox.tmux(*keys, "l")
    on_screen(terminal, lambda screen: "press Enter to return" in screen)
    assert "held: released" in terminal() and state_on_screen(terminal(), "w2") is None
    sandbox.tmux(*keys, "Enter")
    on_screen(terminal, lambda screen: state_on_screen(screen, "w2") == "running")
    # On w2, still running, logs -f follows until ^C, which ends it and not the dashboard.
    sandbox.tmux(*keys, "Down", "l")
    on_screen(terminal, lambda screen: "held: started w2" in screen
              and state_on_screen(screen, "w1") is None)
    sandbox.tmux(*keys, "C-c")
    on_screen(terminal, lambda screen: "press Enter to return" in screen)
    sandbox.tmux(*keys, "Enter")
    on_screen(terminal, lambda screen: state_on_screen(screen, "w2") == "running")
    sandbox.tmux("resize-window", "-t", "term", "-x", "50", "-y", "15")  # a narrow pane
    on_screen(terminal, lambda screen: len(screen.splitlines()) <= 15 and [
        state_on_screen(screen, i) for i in IDS] == ["exited", "running", "exited"])
    sandbox.tmux(*keys, "q")
    on_screen(terminal, prompt_is_back)
    sandbox.tmux(*keys, f"stty -g > {saved}.after; echo o''k", "Enter")
    on_screen(terminal, lambda screen: "ok" in screen.splitlines())
    # ^C leaves as cleanly as q (the terminal's modes are what they were before).
    sandbox.tmux(*keys, "clear; git worker watch", "Enter")
    on_screen(terminal, lambda screen: state_on_screen(screen, "w2") == "running")
    sandbox.tmux(*keys, "C-c")
    on_screen(terminal, prompt_is_back)
    sandbox.tmux(*keys, f"stty -g > {saved}.after-c; echo o''k2", "Enter")
    on_screen(terminal, lambda screen: "ok2" in screen.splitlines())
    before = Path(f"{saved}.before").read_text()
    assert Path(f"{saved}.after").read_text() == before
    assert Path(f"{saved}.after-c").read_text() == before


def test_in_a_real_terminal_an_agent_cannot_retitle_it(sandbox: Sandbox, repo: GitRepo,
                                                      hostile: Path,
                                                      terminal: Callable[[], str]) -> None:
    repo.ok("spawn", "w1")
    sandbox.tmux("send-keys", "-t", "term", "git worker watch", "Enter")
    # Drawn: the lines that carried the title and clipboard sequences are on screen.
    on_screen(terminal, lambda screen: "clip" in screen and "red" in screen)
    title = sandbox.tmux("display-message", "-p", "-t", "term", "#{pane_title}").out
    assert "pwned" not in title
    sandbox.tmux("send-keys", "-t", "term", "q")
    on_screen(terminal, prompt_is_back)


CRASHING = """
import sys
sys.path.insert(0, sys.argv[1])
from git_worker.dashboard import app

draw = app.WatchApp._apply

def crashing(self, snapshot, error):
    draw(self, snapshot, error)
    if snapshot and any(row.get("state") == "exited" for row in snapshot.rows):
        raise RuntimeError("a bug in the dashboard")

app.WatchApp._apply = crashing  # a bug, in the UI's own thread, once w1 exits
from git_worker import cli
raise SystemExit(cli.main(["watch"]))
"""


def test_a_crash_gives_the_terminal_back(sandbox: Sandbox, repo: GitRepo, held: Path,
                                         terminal: Callable[[], str]) -> None:
    repo.ok("spawn", "w1")
    script = sandbox.root / "crashing.py"
    script.write_text(CRASHING)
    saved = sandbox.root / "stty"
    sandbox.tmux("send-keys", "-t", "term", f"stty -g > {saved}.before; {sys.executable} "
                 f"{script} {CHECKOUT / 'lib'}; echo exit=$?", "Enter")
    wait_for(lambda: state_on_screen(terminal(), "w1") == "running")
    release(repo, "w1")
    wait_for(lambda: "exit=3" in terminal())
    assert "internal error" in terminal()
    sandbox.tmux("send-keys", "-t", "term", f"clear; stty -g > {saved}.after; echo o''k",
                 "Enter")
    wait_for(lambda: "ok" in terminal().splitlines())
    assert Path(f"{saved}.after").read_text() == Path(f"{saved}.before").read_text()


def test_every_key_is_in_the_manual() -> None:
    page = (CHECKOUT / "lib" / "git_worker" / "man" / "git-worker.1").read_text()
    watch = page[page.index(".B watch"):page.index(".B doctor", page.index(".B watch"))]
    for action in model.ACTIONS:
        assert f".B {action.key}\n{' '.join(action.command).replace('-', chr(92) + '-')}" \
            in watch, action
    for key in ("?", "q"):
        assert f".B {key}\n" in watch


def test_watch_without_a_terminal_points_at_once(repo: GitRepo) -> None:
    r = repo.worker("watch")
    assert (r.code, r.out) == (1, "")
    assert r.err == ("error: the dashboard needs a terminal\n"
                     "hint: for scripts and pipes: git worker watch --once\n")


def test_watch_is_a_command_of_the_parser() -> None:
    from git_worker import cli

    args = cli.build_parser("watch").parse_args(["watch", "--all", "--once"])
    assert (args.command, args.all, args.once) == ("watch", True, True)
    assert subprocess.run([sys.executable, str(CHECKOUT / "git-worker"), "watch", "-h"],
                          capture_output=True, text=True).returncode == 0
