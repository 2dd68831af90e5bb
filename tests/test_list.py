"""git worker list: records compared with reality; problems reported, never hidden."""

from __future__ import annotations

import json
import os
import shutil
import signal

from conftest import GitRepo, wait_for


def _rows(repo: GitRepo) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}


def test_list_human_table(repo: GitRepo, agent) -> None:
    repo.ok("spawn", "talu-gsga", "talu-jid5")
    repo.wait("talu-gsga", "exited")
    repo.wait("talu-jid5", "exited")
    lines = repo.ok("list").out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "BRANCH", "BASE", "AGENT", "AGE", "PATH"]
    assert lines[1].split()[:5] == ["talu-gsga", "exited", "worker/talu-gsga", "main", "stand-in"]
    assert lines[2].split()[:2] == ["talu-jid5", "exited"]
    def without_age(rows: list[str]) -> list[list[str]]:
        return [row.split()[:5] + row.split()[6:] for row in rows]

    assert without_age(repo.ok("ls").out.splitlines()) == without_age(lines)


def test_empty_list_says_how_to_start(repo: GitRepo) -> None:
    assert repo.ok("list").out == "no workers; start one with: git worker spawn ID\n"
    assert json.loads(repo.ok("list", "--json").out) == []


def test_failed_agent_shows_its_exit_code(repo: GitRepo, agent) -> None:
    repo.ok("spawn", "w1", env={"AGENT_EXIT": "3"})
    shown = repo.wait("w1", "failed")
    assert shown["exit_code"] == 3
    wait_for(lambda: repo.record("w1")["state"] == "failed")  # the runner records it
    assert "failed (3)" in repo.ok("list").out


def test_behind_counts_what_the_base_gained(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    repo.commit("a", "a")
    repo.commit("b", "b")
    assert _rows(repo)["w1"]["behind"] == 2
    assert "main (+2)" in repo.ok("list").out


def test_deleted_branch_and_worktree_are_reported(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "w2", "w3", "--no-launch")
    repo.git("worktree", "remove", str(repo.workers_dir / "w1"))
    shutil.rmtree(repo.workers_dir / "w2")
    repo.git("checkout", "-q", "--detach", cwd=repo.workers_dir / "w3")
    repo.git("branch", "-D", "worker/w3")
    rows = _rows(repo)
    assert rows["w1"]["problems"] == [f"worktree {repo.workers_dir / 'w1'} is missing"]
    assert rows["w2"]["problems"] == [f"worktree {repo.workers_dir / 'w2'} is missing"]
    assert rows["w3"]["problems"] == ["branch worker/w3 is missing",
                                      "worktree is on a detached HEAD, not worker/w3"]
    assert "  ! branch worker/w3 is missing" in repo.ok("list").out


def test_vanished_agent_is_never_shown_as_running(repo: GitRepo, sandbox) -> None:
    sleeper = sandbox.script("sleeper", "exec sleep 60\n")
    repo.git("config", "worker.agent.sleeper.command", str(sleeper))
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", "-a", "sleeper")
    assert repo.show("w1")["state"] == "running"
    pid = repo.record("w1")["launcher"]["pid"]
    os.killpg(pid, signal.SIGKILL)  # the runner and the agent die without a word
    for _ in range(50):
        shown = repo.show("w1")
        if shown["problems"]:
            break
    assert shown["state"] == "vanished"
    assert shown["problems"] == ["its process ended without recording an exit code (killed, or "
                                 "the machine restarted); the worktree and branch are intact"]
    fsck = repo.worker("fsck", "--repair")
    assert "the agent's process is gone without recording an exit" in fsck.out
    assert repo.record("w1")["state"] == "failed"


def test_list_works_from_inside_a_worker_worktree(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    r = repo.worker("list", "--json", cwd=repo.workers_dir / "w1")
    assert r.code == 0
    assert [row["id"] for row in json.loads(r.out)] == ["w1"]


def test_outside_a_repository(sandbox) -> None:
    r = sandbox.run("git", "worker", "list")
    assert r.code == 1
    assert "not a git repository" in r.err
