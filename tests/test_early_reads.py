"""What cli.main starts before argparse (cli._EARLY_READS): the command takes it, it is
what the command would have read itself, and whatever ends the command ends and reaps it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import GitRepo
from git_worker import cli, git
from git_worker.config import Config
from git_worker.repo import Repo


def _children() -> set[int]:
    """This process's children, zombies included (a child not waited for stays one)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry))
    return found


@pytest.fixture
def inside(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """cli.main run in this process, in ``repo``, with the sandbox's environment."""
    for name in list(os.environ):
        if name not in repo.sandbox.env:
            monkeypatch.delenv(name)
    for name, value in repo.sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo.path)
    monkeypatch.setattr(cli, "_LOADED", {})
    return repo


def _entries(config: Config | None) -> list[tuple[str, str | None, str, str]]:
    assert config is not None
    return [(e.key, e.value, e.scope, e.origin) for e in config.entries]


@pytest.mark.parametrize("argv", [["rm", "--bogus"], ["rm"], ["remove", "w1", "-x"],
                                  ["spawn", "--bogus"], ["rm", "w1", "--merged", "--force"]])
def test_what_main_started_early_is_reaped_after_a_usage_error(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    started: list[int] = []
    start_early = cli._start_early

    def recorded(command: str | None) -> None:
        start_early(command)
        started.extend(r._child.pid for r in cli._EARLY.values())

    monkeypatch.setattr(cli, "_start_early", recorded)
    before = _children()
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own usage error
        code = e.code
    assert code == cli.EXIT_USAGE
    # the repository, the settings (and for rm its registry and branches)
    assert len(started) == len(cli._EARLY_READS[argv[0]]) == (3 if argv[0] != "spawn" else 2)
    assert not set(started) & _children(), "an early git is left unreaped"
    assert _children() <= before
    assert not cli._EARLY


def test_what_main_started_early_is_reaped_after_an_exception(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "dispatch", broken)
    before = _children()
    assert cli.main(["rm", "w1"]) == cli.EXIT_BUG
    assert _children() <= before
    assert not cli._EARLY


def test_rm_takes_the_repository_and_settings_main_started(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    inside.ok("spawn", "--no-launch", "w1")
    inside.git("config", "worker.agent", "codex")
    loads: list[object] = []
    monkeypatch.setattr(Config, "load", lambda *a: loads.append(a))  # must not be needed
    monkeypatch.setattr(Repo, "discover", lambda *a: loads.append(a))
    run = git.run
    ran: list[list[str]] = []

    def recorded(argv: list[str], **kwargs: Any) -> git.Completed:
        ran.append(argv)
        return run(argv, **kwargs)

    monkeypatch.setattr(git, "run", recorded)
    before = _children()
    assert cli.main(["rm", "w1"]) == 0
    assert loads == []
    # the registry read early: no for-each-ref of its own (its writes do run)
    assert not any("for-each-ref" in argv for argv in ran), ran
    assert any("update-ref" in argv for argv in ran), ran
    assert cli._LOADED[str(inside.path / ".git")].string("worker.agent") == "codex"
    assert _children() <= before
    assert not (inside.workers_dir / "w1").exists()


def test_rm_of_several_ids_reads_the_registry_again_after_the_first(inside: GitRepo) -> None:
    """The registry read early is the first worker's only: the next one is removed from a
    registry read after the first was (its refs changed)."""
    inside.ok("spawn", "--no-launch", "w1", "w2", "w3")
    assert cli.main(["rm", "w1", "w2", "w3"]) == 0
    assert inside.refs("refs/workers/") == {} and inside.worktrees() == [str(inside.path)]
    assert not any(b.startswith("refs/heads/worker/") for b in inside.refs("refs/heads/"))


def _settings(repo: GitRepo) -> None:
    repo.git("config", "worker.agent", "codex")
    repo.git("config", "extensions.worktreeConfig", "true")
    repo.git("config", "--worktree", "worker.model", "its-own")
    repo.git("config", "--global", "worker.maxConcurrent", "3")
    repo.git("config", "--global", "checkout.workers", "2")


@pytest.mark.parametrize("where", [".", "sub/dir"])
def test_the_settings_read_early_are_exactly_what_load_reads(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    _settings(inside)
    (inside.path / where).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(inside.path / where)
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'worker.review'='true'")
    early = Config.start_load_here()
    repo = Repo.discover()
    assert early is not None
    here = Config.read_here(early, repo)
    loaded = Config.load(repo.common_dir)
    assert _entries(here) == _entries(loaded)
    assert here is not None and here.checkout_workers_set
    assert {e[2] for e in _entries(here)} == {"global", "local", "worktree", "command"}
    assert all(e[3].startswith(("file:/", "command line:")) for e in _entries(here))


def test_in_a_linked_worktree_the_settings_are_read_again_from_the_common_dir(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A linked worktree's own config.worktree (the agent's to write, in a worker's) is
    never a setting: what git found from there is not taken."""
    _settings(inside)
    linked = inside.path.parent / "linked"
    inside.git("worktree", "add", "-q", "--detach", str(linked))
    inside.git("config", "--worktree", "worker.agent", "planted", cwd=linked)
    monkeypatch.chdir(linked)
    before = _children()
    early = Config.start_load_here()
    repo = Repo.discover()
    assert early is not None and Config.read_here(early, repo) is None
    assert _children() <= before  # ended and reaped
    assert cli._config(repo).string("worker.agent") == "codex"


def test_an_include_by_a_relative_path_is_read_again(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    (inside.path / ".git" / "more").write_text("[worker]\n\tagent = included\n")
    inside.git("config", "include.path", "more")
    early = Config.start_load_here()
    repo = Repo.discover()
    assert early is not None and Config.read_here(early, repo) is None
    assert Config.load(repo.common_dir).string("worker.agent") == "included"


def test_no_early_settings_where_the_environment_names_the_repository(
        inside: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", str(inside.path / ".git"))
    assert Config.start_load_here() is None
    assert git.start_config_here("^worker\\.") is None


def test_rm_run_from_a_linked_worktree_reads_the_common_dirs_settings(repo: GitRepo) -> None:
    repo.ok("spawn", "--no-launch", "w1", "w2")
    repo.git("config", "extensions.worktreeConfig", "true")
    w2 = repo.workers_dir / "w2"
    repo.git("config", "--worktree", "worker.teardown", "touch planted", cwd=w2)
    r = repo.worker("rm", "w1", cwd=w2)
    assert r.code == 0, r.err
    assert not Path(repo.workers_dir / "w1").exists()
    assert not (w2 / "planted").exists() and not (repo.path / "planted").exists()
