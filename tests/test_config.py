"""Settings are read exactly as git reads them: every scope, includes, `git -c`, and all of
git's boolean spellings. `git worker config` shows each effective value and its origin."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GitRepo

SPELLINGS = ["true", "yes", "on", "1", "TRUE", "Yes", "false", "no", "off", "0", "", "2",
             "-1", "1k", "maybe", "truthy", "0x1"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_booleans_match_git(repo: GitRepo, spelling: str) -> None:
    from git_worker.config import parse_bool

    repo.git("config", "worker.noFetch", spelling)
    r = repo.sandbox.run("git", "config", "--type=bool", "worker.noFetch", cwd=repo.path)
    ours = parse_bool(spelling)
    if r.code != 0:
        assert ours is None
    else:
        assert ours is (r.out.strip() == "true")


def test_valueless_key_is_true_like_git(repo: GitRepo) -> None:
    with open(repo.path / ".git" / "config", "a") as f:
        f.write("[worker]\n\tnoFetch\n")
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.noFetch"]["value"] == "true"


def test_bad_boolean_is_a_clear_error(repo: GitRepo) -> None:
    repo.git("config", "worker.noFetch", "maybe")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert "bad value 'maybe' for worker.nofetch in .git/config: expected a boolean" in r.err
    assert "git config --local worker.nofetch <value>" in r.err
    assert repo.snapshot() == before


def test_every_scope_and_precedence(repo: GitRepo) -> None:
    home = repo.sandbox.home
    (home / ".gitconfig").write_text("[worker]\n\tbranchPrefix = global/\n\tmodel = g\n")
    repo.git("config", "worker.model", "local-model")
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.branchPrefix"]["value"] == "global/"
    assert rows["worker.branchPrefix"]["scope"] == "global"
    assert rows["worker.model"]["value"] == "local-model"
    assert rows["worker.model"]["scope"] == "local"
    assert rows["worker.agent"]["value"] == "claude"
    assert rows["worker.agent"]["scope"] == "default"


def test_worktree_config_wins_in_that_worktree(repo: GitRepo) -> None:
    # dulwich 1.2.21 reads config.worktree from the wrong place with the wrong precedence.
    repo.git("config", "extensions.worktreeConfig", "true")
    repo.git("config", "worker.branchPrefix", "local/")
    repo.git("config", "--worktree", "worker.branchPrefix", "wt/")
    repo.ok("spawn", "w1", "--no-launch")
    assert "refs/heads/wt/w1" in repo.refs()


def test_include_files_are_followed(repo: GitRepo) -> None:
    inc = repo.sandbox.root / "extra.gitconfig"
    inc.write_text("[worker]\n\tbranchPrefix = inc/\n")
    repo.git("config", "include.path", str(inc))
    repo.ok("spawn", "w1", "--no-launch")
    assert "refs/heads/inc/w1" in repo.refs()


def test_git_dash_c_is_honoured(repo: GitRepo) -> None:
    r = repo.sandbox.run("git", "-c", "worker.branchPrefix=cli/", "worker", "spawn", "w1",
                         "--no-launch", cwd=repo.path)
    assert r.code == 0, r.err
    assert "refs/heads/cli/w1" in repo.refs()
    r = repo.sandbox.run("git", "-c", "worker.model=m1", "worker", "config", "--json",
                         cwd=repo.path)
    rows = {row["key"]: row for row in json.loads(r.out)}
    assert rows["worker.model"] == {**rows["worker.model"], "value": "m1", "scope": "command"}


def test_multi_valued_settings_keep_order(repo: GitRepo) -> None:
    repo.git("config", "--add", "worker.copy", ".env")
    repo.git("config", "--add", "worker.copy", "*.local")
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.copy"]["value"] == [".env", "*.local"]


def test_config_table_for_people(repo: GitRepo) -> None:
    repo.git("config", "worker.agent.mine.command", "my-agent --go")
    repo.git("config", "worker.typo", "1")
    out = repo.ok("config").out
    assert out.splitlines()[0].split() == ["SETTING", "VALUE", "FROM"]
    assert "worker.agent.mine.command  my-agent --go" in out
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.typo"]["doc"] == "unknown setting (typo?)"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("worker.fetchTimeout", "soon", "a number of seconds greater than 0"),
    ("worker.fetchTimeout", "-5", "a number of seconds greater than 0"),
    ("worker.branchPrefix", "a..b/", "a prefix that makes valid branch names"),
    ("worker.branchPrefix", "bad prefix/", "a prefix that makes valid branch names"),
])
def test_bad_values_are_refused_before_anything_is_created(repo: GitRepo, key: str, value: str,
                                                           expected: str) -> None:
    repo.git("config", key, value)
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-f", "main", "--no-launch")
    assert r.code == 1
    assert expected in r.err
    assert repo.snapshot() == before


def test_a_bad_fetch_timeout_leaves_no_ssh_control_dir_behind(repo: GitRepo) -> None:
    """spawn --on reads worker.fetchTimeout for its ssh session (hosts.session): refused,
    it leaves none of the session's private directories (/tmp/gw-ssh-*) behind. Another
    test's session may come and go meanwhile: only one that stays is ours."""
    repo.git("config", "worker.host.box.ssh", "me@box.invalid")
    repo.git("config", "worker.host.box.path", "/srv/clone")
    repo.git("config", "worker.fetchTimeout", "soon")
    before = set(Path("/tmp").glob("gw-ssh-*"))
    r = repo.worker("spawn", "w1", "--on", "box", "--no-launch")
    assert r.code == 1
    assert "bad value 'soon' for worker.fetchtimeout" in r.err.lower()
    deadline = time.monotonic() + 60
    while set(Path("/tmp").glob("gw-ssh-*")) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(Path("/tmp").glob("gw-ssh-*")) - before == set()


@pytest.mark.parametrize("where", [".git", ".git/workers", "."])
def test_worktree_dir_inside_git_dir_is_refused(repo: GitRepo, where: str) -> None:
    repo.git("config", "worker.worktreeDir", where)
    r = repo.worker("spawn", "w1", "--no-launch")
    if where == ".":  # inside the main worktree is allowed (e.g. an ignored .worktrees/)
        assert r.code == 0, r.err
        return
    assert r.code == 1
    assert "points into the git directory" in r.err


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="01279xXkKmMgG+- .eEtTrRuUfFaAlLsSyYoOnN", max_size=8))
def test_any_boolean_spelling_is_read_like_git(spelling: str) -> None:
    """parse_bool agrees with `git config --type=bool` on arbitrary spellings."""
    from git_worker.config import parse_bool

    r = subprocess.run(["git", "-c", f"worker.flag={spelling}", "config", "--type=bool",
                        "worker.flag"], capture_output=True, text=True)
    ours = parse_bool(spelling)
    if r.returncode != 0:
        assert ours is None, (spelling, r.stderr)
    else:
        assert ours is (r.stdout.strip() == "true"), spelling


def _with_default(setting: Any, default: str) -> Any:
    """``setting`` (a config.Setting) with another default."""
    from git_worker.config import Setting

    return Setting(setting.key, default, setting.kind, setting.doc)


# Every default is written once, in config.SETTINGS: each reader below must change with it.
DEFAULT_READERS = [
    ("worker.fetchTimeout", "7", lambda c: c.fetch_timeout, 7.0),
    ("worker.reviewTimeout", "8", lambda c: c.review_timeout, 8.0),
    ("worker.trackerTimeout", "9", lambda c: c.tracker_timeout, 9.0),
    ("worker.agent", "aider", lambda c: c.agent, "aider"),
    ("worker.reviewGate", "my-gate --strict", lambda c: c.review_gate, ["my-gate", "--strict"]),
    ("worker.sshCommand", "ssh -4", lambda c: c.ssh_command, ["ssh", "-4"]),
    ("worker.ports", "3", lambda c: c.ports, 3),
    ("worker.branchPrefix", "agent/", lambda c: c.branch_prefix, "agent/"),
    ("worker.noFetch", "true", lambda c: c.no_fetch, True),
    ("worker.review", "true", lambda c: c.review, True),
    ("worker.closeOnMerge", "true", lambda c: c.boolean("worker.closeOnMerge"), True),
    ("worker.maxConcurrent", "4", lambda c: c.max_concurrent, 4),
]


@pytest.mark.parametrize(("key", "written", "read", "expected"), DEFAULT_READERS,
                         ids=[r[0] for r in DEFAULT_READERS])
def test_the_code_reads_each_default_from_settings(monkeypatch: pytest.MonkeyPatch, key: str,
                                                   written: str, read: Any,
                                                   expected: object) -> None:
    from git_worker import config

    unset = config.Config()
    setting = config.known(key)
    assert setting is not None
    if setting.default is not None:
        assert read(unset) != expected  # else the test below would prove nothing
    monkeypatch.setitem(config._BY_NAME, key.lower(), _with_default(setting, written))
    assert read(unset) == expected


def test_every_concrete_default_has_a_reader_above() -> None:
    """A default that names no value (a placeholder in <>, or none) needs no reader;
    worker.portRange and worker.worktreeDir are read (and tested) by leases and spawn."""
    from git_worker.config import SETTINGS

    concrete = {s.key for s in SETTINGS if s.default is not None and "<" not in s.default}
    assert concrete - {r[0] for r in DEFAULT_READERS} == {"worker.portRange"}


def test_the_default_worktree_dir_is_settings_template(monkeypatch: pytest.MonkeyPatch,
                                                       repo: GitRepo) -> None:
    from git_worker import config, spawn
    from git_worker.repo import Repo

    setting = config.known("worker.worktreeDir")
    assert setting is not None
    monkeypatch.setitem(config._BY_NAME, "worker.worktreedir",
                        _with_default(setting, "../trees-of-<repo>"))
    found = spawn.worktree_root(Repo.discover(str(repo.path)), config.Config())
    assert found == str(repo.path.parent / f"trees-of-{repo.path.name}")


def test_the_default_port_range_is_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from git_worker import config, leases

    setting = config.known("worker.portRange")
    assert setting is not None
    monkeypatch.setitem(config._BY_NAME, "worker.portrange",
                        _with_default(setting, "40000-40009"))
    assert leases.port_range(config.Config()) == (40000, 40009)
