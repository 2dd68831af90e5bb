"""git worker sync: merge or rebase the landing branch into a worker, in its worktree;
a conflict changes nothing, or is handed to the worker's agent."""

from __future__ import annotations

import json

import pytest

from conftest import GitRepo, Sandbox, release, wait_for


def _files(path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*"))
            if p.is_file() and ".git" not in p.parts}


def test_merge_brings_the_target_in(repo: GitRepo) -> None:
    tip = repo.work("w1", "a.txt")
    main = repo.commit("b.txt", "landed\n")
    r = repo.ok("sync", "w1")
    assert r.out.startswith("merged main into w1: now at ")
    wt = repo.workers_dir / "w1"
    new = repo.git("rev-parse", "worker/w1")
    assert repo.git("log", "-1", "--format=%P", "worker/w1").split() == [tip, main]
    assert (wt / "b.txt").read_text() == "landed\n" and repo.git("status", "--porcelain",
                                                                   cwd=wt) == ""
    assert repo.git("rev-parse", "HEAD", cwd=wt) == new
    shown = repo.show("w1")
    assert shown["behind"] == 0 and shown["base"]["oid"] == main
    assert f"sync: merged main at {main[:12]}" in repo.git("log", "-1", "--format=%s",
                                                             "refs/workers/w1")
    assert repo.ok("sync", "w1").out == "w1 is up to date with main\n"


def test_rebase_keeps_history_linear(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    main = repo.commit("b.txt", "landed\n")
    r = repo.ok("sync", "w1", "--rebase")
    assert r.out.startswith("rebased w1 onto main: now at ")
    assert repo.git("log", "-1", "--format=%P", "worker/w1") == main
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "w1: a.txt"
    assert (repo.workers_dir / "w1" / "b.txt").exists()


@pytest.mark.parametrize("rebase", [False, True], ids=["merge", "rebase"])
def test_conflict_aborts_leaving_branch_and_worktree_as_they_were(repo: GitRepo,
                                                                   rebase: bool) -> None:
    repo.commit("shared.txt", "base\n")
    repo.work("w1", "shared.txt", "worker\n")
    repo.work("w1", "more.txt", "more\n")  # two commits: a rebase stops half-way
    repo.commit("shared.txt", "main\n")
    wt = repo.workers_dir / "w1"
    before = (repo.git("rev-parse", "worker/w1"), _files(wt), repo.record("w1"))
    r = repo.worker("sync", "w1", *(["--rebase"] if rebase else []))
    assert r.code == 1
    assert "conflicts in 1 path(s):\n  shared.txt\n" in r.err
    assert "nothing was changed" in r.err and "git worker sync w1 --agent" in r.err
    assert (repo.git("rev-parse", "worker/w1"), _files(wt), repo.record("w1")) == before
    assert repo.git("status", "--porcelain", cwd=wt) == ""
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=wt) == "worker/w1"
    git_dir = repo.path / ".git" / "worktrees" / "w1"
    assert not [p.name for p in git_dir.iterdir()
                if p.name in ("MERGE_HEAD", "rebase-merge", "rebase-apply")]


def test_refused_with_uncommitted_changes_or_a_running_agent(repo: GitRepo, held) -> None:
    repo.work("w1", "a.txt")
    repo.commit("b.txt", "b\n")
    wt = repo.workers_dir / "w1"
    (wt / "a.txt").write_text("changed, not committed\n")
    tip = repo.git("rev-parse", "worker/w1")
    r = repo.worker("sync", "w1")
    assert r.code == 1 and "1 uncommitted file(s) (a.txt)" in r.err
    assert (wt / "a.txt").read_text() == "changed, not committed\n"
    assert repo.git("rev-parse", "worker/w1") == tip

    repo.ok("spawn", "busy")
    r = repo.worker("sync", "busy")
    assert r.code == 1 and "the agent of 'busy' is still running" in r.err
    assert "git worker stop busy" in r.err


@pytest.mark.parametrize("rebase", [False, True], ids=["merge", "rebase"])
def test_agent_resolves_the_conflict_and_commits(repo: GitRepo, sandbox: Sandbox,
                                                 rebase: bool) -> None:
    resolver = sandbox.script("resolver", """
        cat > "$GIT_WORKER_PROMPT_FILE.seen"
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
        for f in $(git diff --name-only --diff-filter=U); do
            echo "resolved" > "$f"
            git add "$f"
        done
        if [ -d "$(git rev-parse --git-path rebase-merge)" ]; then
            GIT_EDITOR=true git rebase --continue
        else
            git commit -q --no-edit
        fi
    """)
    repo.git("config", "worker.agent", "resolver")
    repo.git("config", "worker.agent.resolver.command", str(resolver))
    repo.commit("shared.txt", "base\n")
    tip = repo.work("w1", "shared.txt", "worker\n")
    main = repo.commit("shared.txt", "main\n")

    r = repo.worker("sync", "w1", "--agent", *(["--rebase"] if rebase else []))
    assert r.code == 0, r.err
    assert "w1: conflict with main in shared.txt; its agent was started" in r.out
    # Released once sync has recorded the start (a quick agent's exit may be recorded
    # first); then until the registry has the exit (show derives it sooner, from the exit
    # file).
    release(repo, "w1")
    wait_for(lambda: repo.record("w1")["state"] == "exited")
    wt = repo.workers_dir / "w1"
    assert (wt / "shared.txt").read_text() == "resolved\n"
    assert repo.git("status", "--porcelain", cwd=wt) == ""
    parents = repo.git("log", "-1", "--format=%P", "worker/w1").split()
    assert parents == ([main] if rebase else [tip, main])
    prompt = (repo.path / ".git" / "workers" / "w1" / "prompt.md.seen").read_text()
    assert "conflicts in:\n- shared.txt" in prompt
    assert ("git rebase --continue" if rebase else "git commit --no-edit") in prompt
    history = repo.git("log", "--format=%s", "refs/workers/w1").splitlines()
    assert "sync: conflict with main in 1 path(s); agent started to resolve it" in history
    assert history[0] == "exited 0"
    listed = {x["id"]: x for x in json.loads(repo.ok("list", "--json").out)}
    assert listed["w1"]["state"] == "exited"


def test_a_tag_based_worker_cannot_sync(repo: GitRepo) -> None:
    repo.git("tag", "v1")
    repo.ok("spawn", "t", "-f", "v1", "--no-launch")
    repo.work("t", "t.txt")
    r = repo.worker("sync", "t")
    assert r.code == 1 and "cannot sync 't': the base v1 is not a branch" in r.err
    assert "--into" not in r.err
