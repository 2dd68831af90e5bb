"""Every refusal of rm and merge hints only at what changes the outcome: each test here
is refused, does exactly what the hint says, and is then no longer refused that way."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import GitRepo, Sandbox, release, start_time, wait_for


def _hint(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hint: ")]
    assert len(lines) == 1, err
    return lines[0].removeprefix("hint: ")


# --- rm ------------------------------------------------------------------------------------


def test_rm_of_a_running_agent_hints_stop_not_keep_branch(repo: GitRepo, held: Path) -> None:
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "its agent is still running" in r.err
    hint = _hint(r.err)
    assert "--keep-branch" not in hint  # it would change nothing: the agent still runs
    # The same refusal (which processes it names may differ: the stand-in agent's children
    # come and go between the two calls).
    again = repo.worker("rm", "w1", "--keep-branch").err.splitlines()[0]
    alive = re.compile(r"still running: [^;]*?\(pid [\d ]+\)")
    assert alive.sub("still running", again) == alive.sub("still running", r.err.splitlines()[0])
    assert "git worker stop w1" in hint
    repo.ok("stop", "w1")
    assert repo.ok("rm", "w1").out == "removed w1\n"


def test_rm_right_after_stop_finds_nothing_running(repo: GitRepo, sandbox: Sandbox) -> None:
    """stop returns once the runner is done too: it records the exit and then has work of
    its own (here an automatic review gate that takes a second), and an `rm` straight
    after must not be refused for a process that stop left finishing."""
    agent = sandbox.script("obliging-agent", """
        trap 'exit 0' TERM
        while :; do sleep 0.05; done
    """)
    gate = sandbox.root / "gate-ran"
    sandbox.script("review-gate", f"sleep 1; touch {gate}")
    repo.git("config", "worker.agent.obliging.command", str(agent))
    repo.git("config", "worker.review", "true")
    repo.ok("spawn", "w1", "-a", "obliging")
    repo.wait("w1", "running")
    repo.ok("stop", "w1")
    assert gate.exists()  # the runner's gate had run to its end before stop returned
    assert repo.ok("rm", "w1").out == "removed w1\n"


def test_rm_of_untracked_files_hints_stash_not_keep_branch(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    (wt / "notes.txt").write_text("mine\n")
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "1 modified or untracked file(s) in its worktree (notes.txt)" in r.err
    hint = _hint(r.err)
    assert "--keep-branch" not in hint
    assert repo.worker("rm", "w1", "--keep-branch").code == 1  # as the hint implies: no help
    assert "git stash -u" in hint and str(wt) in hint
    repo.git("stash", "-u", "-q", cwd=wt)
    assert repo.ok("rm", "w1").out == "removed w1\n"
    assert "mine" in repo.git("show", "stash@{0}^3:notes.txt")  # kept where the hint put it


def test_rm_of_unmerged_commits_hints_keep_branch_or_merge(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    repo.work("w2", "b.txt")
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "branch worker/w1 has 1 commit(s) not in main" in r.err
    hint = _hint(r.err)
    assert "--keep-branch" in hint and "git worker merge w1" in hint
    assert repo.ok("rm", "w1", "--keep-branch").out == "removed w1 (branch kept)\n"
    assert "git worker merge w2" in _hint(repo.worker("rm", "w2").err)
    repo.ok("merge", "w2")
    assert repo.ok("rm", "w2").out == "removed w2\n"


def test_rm_hint_names_every_remedy_when_several_are_needed(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    (repo.workers_dir / "w1" / "scratch").write_text("x\n")
    hint = _hint(repo.worker("rm", "w1").err)
    assert hint == (f"commit, stash (git stash -u) or delete them in {repo.workers_dir / 'w1'}, "
                    "and land them (git worker merge w1) or keep the branch with --keep-branch; "
                    "or pass --force to discard it")
    (repo.workers_dir / "w1" / "scratch").unlink()
    repo.ok("rm", "w1", "--keep-branch")


def test_rm_of_a_worker_another_rm_owns_hints_ending_it_then_repair(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    stuck = subprocess.Popen(["sleep", "300"])  # a remover that hangs
    try:
        start = start_time(stuck.pid)
        record = repo.record("w1") | {"state": "removing", "owner": {
            "action": "rm", "pid": stuck.pid, "start": start, "host": os.uname().nodename,
            "force": False, "keep_branch": False}}
        blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                                input=json.dumps(record, indent=2) + "\n").out.strip()
        tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                                input=f"100644 blob {blob}\tworker.json\n").out.strip()
        old = repo.git("rev-parse", "refs/workers/w1")
        commit = repo.git("commit-tree", tree, "-p", old, "-m", "rm: started")
        repo.git("update-ref", "refs/workers/w1", commit, old)
        r = repo.worker("rm", "w1")
        assert r.code == 1 and f"'w1' is busy: a rm is in progress (pid {stuck.pid})" in r.err
        hint = _hint(r.err)
        assert "--force" not in hint and "--keep-branch" not in hint
        assert repo.worker("rm", "w1", "--force").code == 1  # force is no way past it
        assert "if that process is stuck, end it, then run git worker fsck --repair" in hint
    finally:
        stuck.kill()
        stuck.wait()
    wait_for(lambda: not Path(f"/proc/{stuck.pid}").exists())
    repo.worker("fsck", "--repair")
    assert repo.refs("refs/workers/") == {} and not (repo.workers_dir / "w1").exists()


# --- merge ---------------------------------------------------------------------------------


def test_merge_of_nothing_hints_committing_and_committing_lands_it(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    hint = _hint(r.err)
    wt = repo.workers_dir / "w1"
    assert "--force" not in hint and f"commit its work first (in {wt})" in hint
    repo.work("w1", "f.txt")
    assert "merged w1 into main" in repo.ok("merge", "w1").out


def test_merge_refusals_overridden_by_force_as_the_hint_says(repo: GitRepo,
                                                              sandbox: Sandbox) -> None:
    sandbox.script("review-gate", "exit 1")
    repo.work("w1", "f.txt")
    assert repo.worker("review", "w1").code == 1
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "its last review blocked" in r.err
    assert _hint(r.err) == "--force merges it anyway"
    assert "merged w1 into main" in repo.ok("merge", "w1", "--force").out


def test_merge_of_a_running_agent_follows_stop_or_force(repo: GitRepo, sandbox: Sandbox) -> None:
    agent = sandbox.script("commit-then-hold", """
        echo w > w.txt && git add w.txt && git commit -q -m w
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent.hold.command", str(agent))
    repo.ok("spawn", "w1", "w2", "-a", "hold")
    for w in ("w1", "w2"):
        repo.wait(w, "running")
        r = repo.worker("merge", w)
        assert r.code == 1 and f"(git worker stop {w} first)" in r.err
        assert _hint(r.err) == "--force merges it anyway"
    repo.ok("stop", "w1")
    repo.ok("merge", "w1")
    repo.ok("merge", "w2", "--force")
    release(repo, "w2")


def test_merge_of_a_tag_base_hints_into(repo: GitRepo) -> None:
    repo.git("tag", "v1")
    repo.ok("spawn", "w1", "-f", "v1", "--no-launch")
    repo.work("w1", "f.txt")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "--into BRANCH" in _hint(r.err)
    repo.ok("merge", "w1", "--into", "main")


def test_merge_into_a_dirty_checkout_hints_stash(repo: GitRepo) -> None:
    repo.work("w1", "f.txt")
    (repo.path / "README").write_text("local edit\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "commit or stash them there first" in _hint(r.err)
    repo.git("stash", "-q")
    repo.ok("merge", "w1")


def test_merge_conflict_hint_brings_the_branch_up_to_date(repo: GitRepo) -> None:
    repo.work("w1", "README", "theirs\n")
    repo.commit("README", "ours\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    wt = repo.workers_dir / "w1"
    assert f"cd {wt} && git merge main" in _hint(r.err)
    repo.git("merge", "-q", "main", cwd=wt, ok=False)  # conflicts, as the hint expects
    (wt / "README").write_text("both\n")
    repo.git("commit", "-q", "-am", "resolve", cwd=wt)
    repo.ok("merge", "w1")
    assert (repo.path / "README").read_text() == "both\n"


def test_merge_of_a_remote_base_without_local_branch_follows_either_hint(
        repo: GitRepo, sandbox: Sandbox) -> None:
    remote = sandbox.root / "remote.git"
    repo.git("branch", "feature")
    sandbox.run("git", "clone", "-q", "--bare", str(repo.path), str(remote))
    repo.git("branch", "-D", "feature")
    repo.git("remote", "add", "origin", str(remote))
    repo.git("fetch", "-q", "origin")
    repo.ok("spawn", "w1", "w2", "-f", "origin/feature", "--no-launch")
    repo.work("w1", "a.txt")
    repo.work("w2", "b.txt")
    hint = _hint(repo.worker("merge", "w1").err)
    assert hint == ("create it (git branch feature origin/feature) or choose one with "
                    "--into BRANCH")
    repo.ok("merge", "w2", "--into", "main")
    repo.git("branch", "feature", "origin/feature")
    assert "merged w1 into feature" in repo.ok("merge", "w1").out
