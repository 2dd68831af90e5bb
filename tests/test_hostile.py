"""Hostile input, by family: settings, bd output, task text, registry records.

Each input must end in a clear error (exit 1, never 3) that creates nothing, or in a
correct result — and commands that only read (list, fsck, config) keep working.
Ids are in test_ids.py; races in test_races.py; faults in test_faults.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CHECKOUT, GitRepo, Sandbox, release, wait_for

# --- settings ------------------------------------------------------------------------------
# (key, value, what the error says). "{file}" is a regular file in the sandbox.
SETTINGS = [
    ("worker.maxConcurrent", "abc", "expected a whole number of at least 1"),
    ("worker.maxConcurrent", "0", "expected a whole number of at least 1"),
    ("worker.maxConcurrent", "-1", "expected a whole number of at least 1"),
    ("worker.maxConcurrent", "1.5", "expected a whole number of at least 1"),
    ("worker.maxConcurrent", "99999999999", "expected a whole number of at least 1"),
    ("worker.fetchTimeout", "1e300", "at most 86400"),
    ("worker.fetchTimeout", "inf", "at most 86400"),
    ("worker.fetchTimeout", "nan", "at most 86400"),
    ("worker.fetchTimeout", "0", "greater than 0"),
    ("worker.trackerTimeout", "-1", "greater than 0"),
    ("worker.reviewTimeout", "0", "greater than 0"),
    ("worker.review", "2x", "expected a boolean"),
    ("worker.branchPrefix", "-x/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "x.lock/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "/abs/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "a//b/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "@{x}/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "x..y/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "tab\there/", "a prefix that makes valid branch names"),
    ("worker.worktreeDir", "{file}", "cannot hold worktrees"),
    ("worker.worktreeDir", "{file}/below", "cannot hold worktrees"),
    ("worker.worktreeDir", ".git/x", "points into the git directory"),
    ("worker.copy", "../outside", "must stay inside the repository"),
    ("worker.copy", "/etc/passwd", "must stay inside the repository"),
    ("worker.setup", "echo 'unbalanced", "is not valid shell words"),
    ("worker.tracker", "jira", "expected bd, none or auto"),
]


@pytest.mark.parametrize(("key", "value", "expected"), SETTINGS,
                         ids=[f"{k}={v}" for k, v, _ in SETTINGS])
def test_hostile_setting(repo: GitRepo, sandbox: Sandbox, key: str, value: str,
                         expected: str) -> None:
    afile = sandbox.root / "a-file"
    afile.write_text("not a directory\n")
    repo.git("config", key, value.replace("{file}", str(afile)))
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-d", "x", "--no-launch")
    assert r.code == 1, r.err
    assert expected in r.err and "hint:" in r.err
    assert repo.snapshot() == before
    assert repo.worker("list").code == 0
    assert repo.worker("config").code == 0


# --- bd output -----------------------------------------------------------------------------
BIG = 16 * 1024 * 1024
# name: (stdout of `bd show t-1 --json`, expected title in the prompt | error message)
BD_OUTPUT: dict[str, tuple[bytes, str]] = {
    "title a number, description null": (
        b'[{"id": "t-1", "title": 5, "description": null}]', "ok: t-1"),
    "every field the wrong type": (
        b'[{"id": "t-1", "title": ["x"], "labels": "l", "priority": "high", "status": 7,'
        b' "assignee": {}, "design": 1.5, "notes": true}]', "ok: t-1"),
    "two issues, ours second": (
        b'[{"id": "t-2", "title": "theirs"}, {"id": "t-1", "title": "ours"}]', "ok: ours"),
    "NaN and Infinity": (b'{"id": "t-1", "title": "n", "priority": NaN, "x": Infinity}', "ok: n"),
    "invalid UTF-8": (b'[{"id": "t-1", "title": "caf\xe9 \xff", "description": "x\xc3("}]',
                      "ok: caf\ufffd \ufffd"),
    "huge (16 MiB description)": (
        json.dumps([{"id": "t-1", "title": "big", "description": "d" * BIG}]).encode(),
        "ok: big"),
    "another issue": (b'[{"id": "t-2", "title": "other"}]',
                      "bd show t-1 --json answered issue 't-2' instead"),
    "id a number": (b'{"id": 5}', "answered JSON without an issue in it"),
    "null": (b"null", "answered JSON without an issue in it"),
    "a string": (b'"t-1"', "answered JSON without an issue in it"),
    "array of null": (b"[null]", "answered JSON without an issue in it"),
    "envelope without data": (b'{"schema_version": 1, "data": null}',
                              "answered JSON without an issue in it"),
    "empty object": (b"{}", "answered JSON without an issue in it"),
    "nothing at all": (b"", "answered something that is not JSON"),
    "binary": (bytes(range(256)) * 4, "answered something that is not JSON"),
    "nested 100000 deep": (b"[" * 100_000, "answered something that is not JSON"),
    "HTML": (b"<html>502 Bad Gateway</html>", "answered something that is not JSON"),
}


@pytest.mark.parametrize("case", list(BD_OUTPUT))
def test_hostile_bd_output(repo: GitRepo, sandbox: Sandbox, case: str) -> None:
    out, expected = BD_OUTPUT[case]
    answer = sandbox.root / "bd-answer"
    answer.write_bytes(out)
    sandbox.script("bd", f'cat "{answer}"\n')
    repo.git("config", "worker.tracker", "bd")
    before = repo.snapshot()
    r = repo.worker("spawn", "t-1", "--no-launch")
    if expected.startswith("ok: "):
        assert r.code == 0, r.err
        prompt = (repo.path / ".git" / "workers" / "t-1" / "prompt.md").read_text()
        assert f"task t-1: {expected[4:]}\n" in prompt
        assert repo.record("t-1")["task"]["source"] == "bd"
    else:
        assert r.code == 1, r.err
        assert r.err.startswith("error: t-1: ") and expected in r.err and "hint:" in r.err
        assert repo.snapshot() == before


# --- task text -----------------------------------------------------------------------------
# Passed with -d through argv (bytes that are not UTF-8 arrive as surrogates), to a real
# launched agent: the text must reach the prompt as text, and nothing may run it.
TASK_TEXT = {
    "shell metacharacters": "$(touch {canary}) `touch {canary}`; touch {canary} | & > < * ~ \\",
    "quotes and newlines": "it's \"quoted\"\n\n--flag -p\n'; touch {canary}; '",
    "tmux and format syntax": "#(touch {canary}) #{{pane_id}} %s %n {{id}} {{title}}",
    "invalid UTF-8": "bytes \udcff\udcfe end",
    "control characters": "bell \x07 escape \x1b[31m red \x1b]0;title\x07 del \x7f",
    "right-to-left and emoji": "\u202eevil\u202c \U0001f600",
    "very long (120 kB)": "long " * 24_000,
}


@pytest.mark.parametrize("case", list(TASK_TEXT))
def test_hostile_task_text(repo: GitRepo, sandbox: Sandbox, agent: Path, case: str) -> None:
    canary = sandbox.root / "canary"
    text = TASK_TEXT[case].format(canary=canary) if "{canary}" in TASK_TEXT[case] \
        else TASK_TEXT[case]
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", "-d", text)
    assert repo.wait("w1", "exited")["exit_code"] == 0
    seen = (repo.path / ".git" / "workers" / "w1" / "prompt.md.seen").read_text()
    expected = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    assert expected.strip() in seen
    assert not canary.exists()
    # The live state comes from the exit file; the runner records it a moment later.
    wait_for(lambda: repo.record("w1")["exit_code"] == 0)


# --- what an agent's hook passes on stdin -------------------------------------------------
# Claude Code's hook input / Codex's notification, as the hook receives it: only parsed for
# a message. Whatever arrives, the event is recorded and the hook stays quiet.
HOOK_INPUT = {
    "nested 100000 deep": (b"[" * 100_000, ""),
    "binary": (bytes(range(256)) * 16, ""),
    "over the 1 MiB read limit": (json.dumps({"message": "m" * (2 << 20)}).encode(), ""),
    "message not a string": (b'{"message": {"$(touch x)": [1, 2]}}',
                             "{'$(touch x)': [1, 2]}"),
}


@pytest.mark.parametrize("case", list(HOOK_INPUT))
def test_hostile_hook_input(repo: GitRepo, sandbox: Sandbox, held: Path, case: str) -> None:
    data, message = HOOK_INPUT[case]
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    env = {"GIT_WORKER_ID": "w1", "GIT_WORKER_COMMON_DIR": str(repo.path / ".git"),
           "GIT_WORKER_LIB": str(CHECKOUT / "lib"), "GIT_WORKER_PYTHON": sys.executable}
    proc = subprocess.run([str(CHECKOUT / "hooks" / "claude-code" / "event"), "waiting"],
                          input=data, env={**sandbox.env, **env}, capture_output=True,
                          cwd=repo.workers_dir / "w1")
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert repo.record("w1")["state"] == "waiting"
    event = repo.git("log", "-1", "--format=%s", "refs/workers/w1")
    assert event == "agent: waiting" + (f": {message}" if message else "")
    assert not (repo.workers_dir / "w1" / "x").exists()
    release(repo, "w1")


# --- Python files in the worktree ----------------------------------------------------------
# git-worker's own Python processes that run in an agent's worktree (the runner, which tmux
# starts there and which moves there itself; the hooks, which the agent's CLI runs there)
# import from git-worker's lib dir and Python's, never from that directory.


# The agent's part: a module named after every module of Python's standard library, in its
# worktree, each leaving a file in the marks directory if it is ever imported.
_PLANT = """
import os, sys
for name in sys.stdlib_module_names:
    with open(os.path.join(sys.argv[1], name + ".py"), "w") as f:
        f.write(f"open({os.path.join(sys.argv[2], name)!r}, 'w').close()\\n")
"""


def _marks(sandbox: Sandbox) -> Path:
    """The directory the planted modules leave their marks in (empty: none ever ran), and
    plant.py beside it, which plants them: plant.py DIRECTORY MARKS."""
    marks = sandbox.root / "imported"
    marks.mkdir()
    (sandbox.root / "plant.py").write_text(_PLANT)
    return marks


def _planting_agent(repo: GitRepo, sandbox: Sandbox, launcher: str) -> Path:
    """An agent that plants the modules in its worktree, then exits 3; the marks."""
    marks = _marks(sandbox)
    planter = sandbox.script("planter", f"""
        {sys.executable} -I {sandbox.root / "plant.py"} "$PWD" {marks}
        exit 3
    """)
    repo.git("config", "worker.agent", "planter")
    repo.git("config", "worker.agent.planter.command", str(planter))
    repo.git("config", "worker.launcher", launcher)
    return marks


def _spawned_then_started_there(repo: GitRepo, env: dict[str, str] | None = None) -> None:
    """w1 spawned (its agent plants the modules and exits 3), then started again: its
    runner starts in the worktree now, modules and all. Each exit is recorded."""
    repo.ok("spawn", "w1", "-d", "a task", env=env)
    assert repo.wait("w1", "failed")["exit_code"] == 3
    assert (repo.workers_dir / "w1" / "json.py").exists()
    repo.ok("start", "w1", env=env)
    assert repo.wait("w1", "failed")["exit_code"] == 3


@pytest.mark.parametrize("launcher", ["detached", "tmux"])
def test_the_runner_never_imports_from_the_worktree(repo: GitRepo, sandbox: Sandbox,
                                                    launcher: str) -> None:
    """An agent that leaves json.py (and the like) in its worktree: the runner records its
    exit all the same, and runs none of them (nor when it is started there again)."""
    marks = _planting_agent(repo, sandbox, launcher)
    _spawned_then_started_there(repo)
    assert sorted(p.name for p in marks.iterdir()) == []


@pytest.mark.parametrize("launcher", ["detached", "tmux"])
def test_the_runner_never_imports_from_the_worktree_through_a_relative_pythonpath(
        repo: GitRepo, sandbox: Sandbox, launcher: str) -> None:
    """PYTHONPATH=. (or src, lib...) in the user's environment: Python makes it absolute
    against the directory it starts in, which for a runner tmux starts is the worktree.
    The runner drops such entries: the agent's json.py there runs neither at its exit nor
    when it is started there again."""
    marks = _planting_agent(repo, sandbox, launcher)
    _spawned_then_started_there(repo, env={"PYTHONPATH": "."})
    assert sorted(p.name for p in marks.iterdir()) == []


def test_a_tmux_server_with_a_relative_pythonpath_never_makes_the_runner_import_from_the_worktree(
        repo: GitRepo, sandbox: Sandbox) -> None:
    """The tmux server is the user's, started with PYTHONPATH=. long before (a session's
    environment is its server's): the runner started there gets git-worker's PYTHONPATH."""
    marks = _planting_agent(repo, sandbox, "tmux")
    sandbox.run("tmux", "new-session", "-d", "-s", "users", "sleep 600",
                env={"PYTHONPATH": "."}, cwd=sandbox.root)
    _spawned_then_started_there(repo)
    assert sorted(p.name for p in marks.iterdir()) == []


@pytest.mark.parametrize("pythonpath", [False, True], ids=["", "PYTHONPATH=."])
@pytest.mark.parametrize("hook", ["claude-code/event", "codex/notify"])
def test_the_hooks_never_import_from_the_worktree(repo: GitRepo, sandbox: Sandbox,
                                                  held: Path, hook: str,
                                                  pythonpath: bool) -> None:
    """The agent's CLI runs git-worker's hook in the worktree, where the agent may have
    left json.py (and the like): the event is recorded, and none of them runs — nor
    through a relative PYTHONPATH (.) in the agent's environment, which Python makes the
    worktree."""
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    marks = _marks(sandbox)
    sandbox.run(sys.executable, "-I", sandbox.root / "plant.py", repo.workers_dir / "w1", marks)
    env = {"GIT_WORKER_ID": "w1", "GIT_WORKER_COMMON_DIR": str(repo.path / ".git"),
           "GIT_WORKER_LIB": str(CHECKOUT / "lib"), "GIT_WORKER_PYTHON": sys.executable,
           "GIT_WORKER_RUNTIME_DIR": str(repo.path / ".git" / "workers" / "w1"),
           **({"PYTHONPATH": "."} if pythonpath else {})}
    argv = ["waiting"] if hook == "claude-code/event" else [
        json.dumps({"type": "agent-turn-complete", "last-assistant-message": "All done."})]
    proc = subprocess.run([str(CHECKOUT / "hooks" / hook), *argv], input=b"{}",
                          env={**sandbox.env, **env}, capture_output=True,
                          cwd=repo.workers_dir / "w1")
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert repo.record("w1")["state"] == "waiting"
    assert sorted(p.name for p in marks.iterdir()) == []
    release(repo, "w1")


def test_the_scratch_reaper_never_imports_from_the_current_directory(
        repo: GitRepo, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """land's scratch checkout starts a reaper (`python -c`) from wherever git-worker runs:
    a worker's worktree, say, and the agent's json.py there."""
    from git_worker import scratch
    from git_worker.repo import Repo

    marks = _marks(sandbox)
    here = sandbox.root / "worktree-like"
    here.mkdir()
    sandbox.run(sys.executable, "-I", sandbox.root / "plant.py", here, marks)
    monkeypatch.chdir(here)
    with scratch.checkout(Repo.discover(str(repo.path)), "HEAD") as path:
        assert Path(path, "README").exists()
    # the reaper has done its work, unless it ran what it found here first
    wait_for(lambda: not Path(path).parent.exists() or any(marks.iterdir()))
    assert sorted(p.name for p in marks.iterdir()) == []


# --- registry records ---------------------------------------------------------------------


def _commit(repo: GitRepo, content: bytes | None, parent: str | None) -> str:
    entries = ""
    if content is not None:
        blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                                input=content.decode("latin-1")).out.strip()
        entries = f"100644 blob {blob}\tworker.json\n"
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path, input=entries).out.strip()
    return repo.git("commit-tree", tree, *(["-p", parent] if parent else []), "-m", "edited")


def _edited(repo: GitRepo, wid: str, change: str) -> bytes:
    record = repo.record(wid)
    exec(change, {"r": record})
    return json.dumps(record).encode()


# name: (how the ref is made to point elsewhere, can --repair restore it?)
REGISTRY = {
    "blob": ("blob", False),
    "tree": ("tree", True),
    "annotated tag": ("tag", True),
    "missing object": ("missing", False),
    "no worker.json": ("content:", True),
    "bad JSON": ("content:{broken", True),
    "JSON array": ("content:[]", True),
    "not UTF-8": ("content:\xff\xfe", True),
    "nested 100000 deep": ("content:" + "[" * 100_000, True),
    "state a number": ("edit:r['state'] = 5", True),
    "base missing": ("edit:del r['base']", True),
    "base a string": ("edit:r['base'] = 'main'", True),
    "base without oid": ("edit:del r['base']['oid']", True),
    "exit_code a string": ("edit:r['exit_code'] = '0'", True),
    "launcher null": ("edit:r['launcher'] = None", True),
    "another worker's record": ("other", False),
}


def _corrupt(repo: GitRepo, wid: str, how: str) -> None:
    tip = repo.git("rev-parse", f"refs/workers/{wid}")
    if how == "blob":
        target = repo.git("rev-parse", f"{tip}:worker.json")
    elif how == "tree":
        target = repo.git("rev-parse", f"{tip}^{{tree}}")
    elif how == "tag":
        repo.git("tag", "-a", "-m", "t", f"t-{wid}", tip)
        target = repo.git("rev-parse", f"t-{wid}")
        repo.git("tag", "-d", f"t-{wid}")
    elif how == "missing":
        (repo.path / ".git" / "refs" / "workers" / wid).write_text("1" * 40 + "\n")
        return
    elif how == "other":
        target = repo.git("rev-parse", "refs/workers/good")
    elif how.startswith("edit:"):
        target = _commit(repo, _edited(repo, wid, how[5:]), tip)
    else:
        text = how[len("content:"):]
        target = _commit(repo, text.encode("latin-1") if text else None, tip)
    repo.git("update-ref", f"refs/workers/{wid}", target)


def test_hostile_registry_records(repo: GitRepo) -> None:
    """Every REGISTRY case at once, next to a good worker: list keeps working and reports
    each; commands that need the record refuse it clearly; fsck offers to restore it from
    its history (or says it needs a human, and how); --repair restores what it offered."""
    ids = {case: f"r{n}" for n, case in enumerate(REGISTRY)}
    repo.ok("spawn", "good", *ids.values(), "--no-launch")
    for case, wid in ids.items():
        _corrupt(repo, wid, REGISTRY[case][0])

    rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
    assert rows["good"]["state"] == "ready" and rows["good"]["problems"] == []
    human = repo.ok("list").out
    for case, wid in ids.items():
        assert rows[wid]["state"] == "corrupt", case
        assert "git worker fsck" in rows[wid]["problems"][0], case
        assert any(ln.split()[:2] == [wid, "corrupt"] for ln in human.splitlines()), case
    r = repo.worker("rm", *ids.values())
    assert r.code == 1 and r.err.count("is unreadable") == len(ids), r.err
    r = repo.worker("stop", *ids.values())
    assert r.code == 1 and r.err.count("is unreadable") == len(ids), r.err
    for command in (["show", "r0"], ["merge", "r0"], ["review", "r0"], ["logs", "r0"]):
        r = repo.worker(*command)
        assert r.code == 1 and "the registry record of 'r0' is unreadable" in r.err, command

    r = repo.worker("fsck")
    assert r.code == 1
    for case, wid in ids.items():
        line = next(ln for ln in r.out.splitlines() if ln.startswith(f"problem: {wid}: "))
        if REGISTRY[case][1]:
            assert "(--repair would: restore the last readable state" in line, case
        else:
            assert f"(needs you: look at it (git log refs/workers/{wid}), then drop it: " \
                   f"git update-ref -d refs/workers/{wid})" in line, case
    assert repo.worker("fsck", "--repair").code == 1  # the ones that need a human remain
    rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
    for case, wid in ids.items():
        assert rows[wid]["state"] == ("ready" if REGISTRY[case][1] else "corrupt"), case
    for case, wid in ids.items():
        if not REGISTRY[case][1]:
            repo.git("update-ref", "-d", f"refs/workers/{wid}")
    repo.ok("rm", *(w for c, w in ids.items() if REGISTRY[c][1]))
    repo.worker("fsck", "--repair")  # the unrestorable ones' worktrees are orphans now
    repo.git("fsck", "--no-progress")


# --- properties ------------------------------------------------------------------------------

FIELDS = ["id", "state", "branch", "base", "worktree", "agent", "model", "launcher",
          "exit_code", "review", "task", "spawn_steps", "owner", "merge", "schema_version",
          "leases"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4))
def test_any_edited_record_is_read_or_reported_never_a_crash(changes: dict) -> None:
    """Whatever a hand edit puts in worker.json's fields, reading it gives a usable record
    (every field the type readers rely on) or a Corrupt with a reason — nothing else."""
    from git_worker.registry import store
    from git_worker.registry.record import _FIELD_TYPES, Corrupt

    record = {"id": "w1", "state": "ready", "branch": "refs/heads/worker/w1",
              "base": {"name": "main", "oid": "0" * 40}, "worktree": "/tmp/w1", **changes}
    found = store.parse("w1", "0" * 40, json.dumps(record).encode())
    if isinstance(found, Corrupt):
        assert found.reason
        return
    for key, types in _FIELD_TYPES.items():
        assert isinstance(getattr(found.record, key), types), key
    assert isinstance(found.record.base["name"], str) and found.record.id == "w1"


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="0123456789xXabcdefkKmMgG+- \t", max_size=12))
def test_any_integer_spelling_is_read_like_git(spelling: str) -> None:
    """parse_int (worker.maxConcurrent) agrees with `git config --type=int` (which reads
    64 bits; git's int settings, and parse_int, stop at 32)."""
    import subprocess

    from git_worker.config import parse_int

    r = subprocess.run(["git", "-c", f"worker.n={spelling}", "config", "--type=int",
                        "worker.n"], capture_output=True, text=True)
    ours = parse_int(spelling)
    if r.returncode != 0:
        assert ours is None, (spelling, r.stderr)
    else:
        value = int(r.stdout)
        assert ours == (value if -(2**31) <= value < 2**31 else None), spelling
