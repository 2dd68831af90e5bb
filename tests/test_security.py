"""The trust boundary (README "Security"): an agent, its worktree, its branch and the
registry records are untrusted; decisions rest on the user's own git config and files.

Each test plays the attacker for real: a stand-in agent that rewrites what it can write,
a record forged with plain git, a ref update aimed at a live worker from outside.
"""

from __future__ import annotations

import json

import pytest

from conftest import GitRepo, Sandbox, wait_for

# --- an agent cannot pass its own review -----------------------------------------------------

# What the agent does after committing its work, in its worktree, to get `review: passed`
# with a gate of its own choosing (`true`) instead of the user's, which blocks.
FORGERIES = {
    # A repository of its own where its `.git` file was.
    "git dir replaced": """
        rm .git && git init -q . && git config worker.reviewGate true
        git config worker.review true
    """,
    # Its `.git` file pointed at a repository of its own, on the worker's branch.
    "gitfile redirected": """
        git init -q --bare .fake && git --git-dir=.fake symbolic-ref HEAD refs/heads/worker/w1
        git --git-dir=.fake config worker.reviewGate true
        git --git-dir=.fake config worker.review true
        echo "gitdir: $PWD/.fake" > .git
    """,
    # Its worktree's own config (.git/worktrees/<admin>/config.worktree), which git reads
    # in that worktree once the user has turned extensions.worktreeConfig on.
    "worktree config": """
        git config --worktree worker.reviewGate true
    """,
}


def hostile_agent(sandbox: Sandbox, repo: GitRepo, forgery: str) -> None:
    agent = sandbox.script("hostile-agent", """
        echo bad > work.txt && git add work.txt && git commit -q -m "bad work"
    """ + FORGERIES[forgery])
    repo.git("config", "worker.agent", "hostile")
    repo.git("config", "worker.agent.hostile.command", str(agent))
    repo.git("config", "worker.launcher", "detached")
    repo.git("config", "worker.review", "true")
    gate = sandbox.script("users-gate", "echo 'the user gate blocks this'; exit 1")
    repo.git("config", "worker.reviewGate", str(gate))
    repo.git("config", "extensions.worktreeConfig", "true")


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_an_agent_cannot_pass_its_own_review(repo: GitRepo, sandbox: Sandbox,
                                             forgery: str) -> None:
    hostile_agent(sandbox, repo, forgery)
    main = repo.git("rev-parse", "main")
    repo.ok("spawn", "w1", "-d", "do some work")
    # worker.review true: the runner reviews the worker by itself once the agent exits 0.
    wait_for(lambda: (repo.record("w1").get("review") or {}).get("status") is not None)
    review = repo.record("w1")["review"]
    assert review["status"] != "passed", review
    tip = repo.git("rev-parse", "worker/w1")
    assert repo.git("log", "-1", "--format=%s", tip) == "bad work"  # the agent did run

    merged = repo.worker("merge", "w1")
    assert merged.code == 1, merged
    assert "refusing to merge 'w1'" in merged.err
    assert repo.git("rev-parse", "main") == main

    reviewed = repo.worker("review", "w1")
    assert reviewed.code == 1, reviewed
    if forgery == "worktree config":  # still a worktree of ours: the user's gate ran
        assert "the user gate blocks this" in reviewed.out
        assert repo.record("w1")["review"]["status"] == "blocked"
    else:
        assert "not a registered git worktree" in reviewed.err, reviewed.err
        assert "not a registered git worktree" in merged.err
        assert "not a registered git worktree" in " ".join(repo.show("w1")["problems"])
        assert repo.record("w1")["review"]["status"] == "error"
    assert repo.git("rev-parse", "main") == main
    # --force is the user's word: it lands what the user chose to land.
    repo.ok("merge", "w1", "--force")
    assert repo.git("rev-parse", "main") != main


def test_settings_come_from_the_repository_even_inside_a_worktree(repo: GitRepo) -> None:
    """`git worker config` run in a worker's worktree shows the repository's settings,
    not the worktree's config.worktree."""
    repo.git("config", "extensions.worktreeConfig", "true")
    repo.git("config", "worker.reviewGate", "users-gate")
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    repo.git("config", "--worktree", "worker.reviewGate", "true", cwd=wt)
    assert repo.git("config", "worker.reviewGate", cwd=wt) == "true"  # what git itself says
    shown = json.loads(repo.worker("config", "--json", cwd=wt).out)
    gate = next(row for row in shown if row["key"] == "worker.reviewGate")
    assert gate["value"] == "users-gate", gate



# --- the reference-transaction hook judges by the git dir that runs the update ---------------


def test_hook_is_not_fooled_by_git_work_tree(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.ok("hooks", "install")
    first = repo.work("w1", "a.txt")
    tip = repo.work("w1", "b.txt")
    repo.ok("spawn", "w2", "--no-launch")
    wt1, wt2 = repo.workers_dir / "w1", repo.workers_dir / "w2"
    rewinds = {
        # From the main repository, naming w1's worktree as the work tree.
        "GIT_WORK_TREE": ({"GIT_WORK_TREE": str(wt1)}, repo.path),
        # From another worker's worktree.
        "another worktree": ({}, wt2),
        "another worktree, GIT_WORK_TREE": ({"GIT_WORK_TREE": str(wt1)}, wt2),
        # With the main repository's git dir and w1's worktree as the current directory.
        "GIT_DIR": ({"GIT_DIR": str(repo.path / ".git")}, wt1),
    }
    for name, (env, cwd) in rewinds.items():
        r = sandbox.run("git", "update-ref", "refs/heads/worker/w1", first, cwd=cwd, env=env)
        assert r.code != 0, name
        assert "refusing to move branch worker/w1 backwards" in r.err, (name, r.err)
        assert repo.git("rev-parse", "worker/w1") == tip, name
    # From its own worktree: still the agent's business (reset, amend, rebase).
    repo.git("reset", "-q", "--hard", first, cwd=wt1)
    assert repo.git("rev-parse", "worker/w1") == first


# --- a record naming another worker's branch and worktree -----------------------------------


def forge(repo: GitRepo, copy_of: str, forged_id: str, **changes: object) -> None:
    """refs/workers/<forged_id>: a copy of another worker's record, written with plain git."""
    record = {**repo.record(copy_of), "id": forged_id, **changes}
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input=json.dumps(record, indent=2) + "\n").out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    commit = repo.git("commit-tree", tree, "-m", "forged")
    repo.git("update-ref", f"refs/workers/{forged_id}", commit)


def intact(repo: GitRepo, worker_id: str, tip: str) -> None:
    wt = repo.workers_dir / worker_id
    assert repo.git("rev-parse", f"worker/{worker_id}") == tip
    assert str(wt) in repo.worktrees()
    assert repo.show(worker_id)["problems"] == []


def test_rm_of_a_forged_record_leaves_the_other_worker_intact(repo: GitRepo) -> None:
    tip = repo.work("w1", "a.txt")
    (repo.workers_dir / "w1" / "notes.txt").write_text("uncommitted work\n")
    forge(repo, "w1", "forged")

    fsck = repo.worker("fsck")
    assert fsck.code == 1
    assert "workers 'forged', 'w1' name the same branch worker/w1" in fsck.out
    assert f"workers 'forged', 'w1' name the same worktree {repo.workers_dir / 'w1'}" \
        in fsck.out
    repo.worker("fsck", "--repair")
    intact(repo, "w1", tip)

    r = repo.worker("rm", "-f", "forged")
    assert r.code == 0, r.err
    assert "kept branch worker/w1: worker 'w1' names it too" in r.err
    assert "kept worktree" in r.err
    intact(repo, "w1", tip)
    assert (repo.workers_dir / "w1" / "notes.txt").read_text() == "uncommitted work\n"
    assert "refs/workers/forged" not in repo.refs()
    repo.ok("fsck")


def test_fsck_repair_of_a_forged_spawn_leaves_the_other_worker_intact(
        repo: GitRepo, sandbox: Sandbox) -> None:
    """A forged `spawning` record whose spawner is gone: --repair rolls that spawn back,
    which would delete a branch still at its base and a worktree with nothing in it."""
    repo.ok("spawn", "w1", "--no-launch")
    tip = repo.git("rev-parse", "worker/w1")
    gone = sandbox.run("sh", "-c", "echo $$").out.strip()  # a pid that has exited
    forge(repo, "w1", "forged", state="spawning",
          owner={"action": "spawn", "pid": int(gone), "start": 1, "host": None})
    r = repo.worker("fsck", "--repair")
    assert "repaired: forged: spawn was interrupted" in r.out, r.out
    assert "kept worktree" in r.out and "kept branch refs/heads/worker/w1" in r.out
    intact(repo, "w1", tip)
    assert "refs/workers/forged" not in repo.refs()
