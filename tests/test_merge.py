"""git worker merge: clean, fast-forward, squash, conflicts that change nothing, the rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox


def test_fast_forward_into_checked_out_main_updates_its_files(repo: GitRepo) -> None:
    tip = repo.work("w1", "feature.txt", "new\n")
    r = repo.ok("merge", "w1")
    assert f"merged w1 into main as {tip[:12]} (fast-forward)" in r.out
    assert repo.git("rev-parse", "main") == tip
    assert (repo.path / "feature.txt").read_text() == "new\n"
    assert repo.git("status", "--porcelain") == ""
    record = repo.record("w1")
    assert record["state"] == "merged"
    assert record["merge"]["commit"] == tip and record["merge"]["kind"] == "fast-forward"
    assert "git worker rm w1" in r.out


def test_merge_commit_when_main_moved_on(repo: GitRepo) -> None:
    tip = repo.work("w1", "feature.txt", "new\n")
    main_before = repo.commit("other.txt", "other\n")
    r = repo.ok("merge", "w1")
    head = repo.git("rev-parse", "main")
    assert f"merged w1 into main as {head[:12]} (merge commit)" in r.out
    assert repo.git("log", "-1", "--format=%P", "main").split() == [main_before, tip]
    assert repo.git("log", "-1", "--format=%s", "main") == "Merge branch 'worker/w1' into main"
    assert repo.git("log", "-1", "--format=%an", "main") == "Test Author"
    assert (repo.path / "feature.txt").exists() and (repo.path / "other.txt").exists()
    assert repo.git("status", "--porcelain") == ""


def test_squash_makes_one_commit_with_the_subjects(repo: GitRepo) -> None:
    repo.work("w1", "a.txt", "a\n", "first step")
    repo.work("w1", "b.txt", "b\n", "second step")
    old = repo.git("rev-parse", "main")
    repo.ok("merge", "w1", "--squash")
    assert repo.git("log", "-1", "--format=%P", "main") == old
    message = repo.git("log", "-1", "--format=%B", "main")
    assert message.startswith("w1: squashed worker/w1\n")
    assert "* first step" in message and "* second step" in message
    assert repo.git("ls-tree", "--name-only", "main").split() == ["README", "a.txt", "b.txt"]
    assert repo.record("w1")["merge"]["kind"] == "squash"


def test_target_not_checked_out_is_updated_without_touching_any_worktree(repo: GitRepo) -> None:
    repo.git("branch", "release")
    repo.ok("spawn", "w1", "-f", "release", "--no-launch")
    tip = repo.work("w1", "fix.txt", "fix\n")
    before_main = repo.git("rev-parse", "main")
    repo.ok("merge", "w1")
    assert repo.git("rev-parse", "release") == tip
    assert repo.git("rev-parse", "main") == before_main
    assert not (repo.path / "fix.txt").exists()
    assert repo.git("status", "--porcelain") == ""


def test_into_another_branch(repo: GitRepo) -> None:
    repo.git("branch", "staging")
    repo.commit("main-only.txt", "m\n")
    repo.work("w1", "f.txt", "f\n")
    main_before = repo.git("rev-parse", "main")
    r = repo.ok("merge", "w1", "--into", "staging")
    assert "into staging" in r.out
    assert repo.git("rev-parse", "main") == main_before
    assert repo.git("show", "staging:f.txt") == "f"
    assert repo.record("w1")["merge"]["into"] == "refs/heads/staging"
    missing = repo.worker("merge", "w1", "--into", "nope")
    assert missing.code == 1 and "--into nope: no local branch nope" in missing.err


def test_remote_tracking_base_lands_in_the_local_branch(repo: GitRepo, sandbox: Sandbox) -> None:
    remote = sandbox.root / "remote.git"
    sandbox.run("git", "clone", "-q", "--bare", str(repo.path), str(remote))
    repo.git("remote", "add", "origin", str(remote))
    repo.git("fetch", "-q", "origin")
    repo.ok("spawn", "w1", "-f", "origin/main", "--no-launch")
    tip = repo.work("w1", "f.txt", "f\n")
    r = repo.ok("merge", "w1")
    assert "into main" in r.out
    assert repo.git("rev-parse", "main") == tip
    assert repo.git("rev-parse", "origin/main") != tip


def test_remote_tracking_base_without_local_branch_needs_into(repo: GitRepo,
                                                               sandbox: Sandbox) -> None:
    remote = sandbox.root / "remote.git"
    repo.git("branch", "feature")
    sandbox.run("git", "clone", "-q", "--bare", str(repo.path), str(remote))
    repo.git("branch", "-D", "feature")
    repo.git("remote", "add", "origin", str(remote))
    repo.git("fetch", "-q", "origin")
    repo.ok("spawn", "w1", "-f", "origin/feature", "--no-launch")
    repo.work("w1", "f.txt", "f\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert "no local branch feature to merge into" in r.err
    assert "git branch feature origin/feature" in r.err and "--into BRANCH" in r.err
    assert "refs/heads/feature" not in repo.refs()


def test_tag_base_needs_into(repo: GitRepo) -> None:
    repo.git("tag", "v1.0")
    repo.ok("spawn", "w1", "-f", "v1.0", "--no-launch")
    repo.work("w1", "f.txt", "f\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "the base v1.0 is not a branch" in r.err
    repo.ok("merge", "w1", "--into", "main")


def test_conflict_changes_nothing_and_lists_paths(repo: GitRepo) -> None:
    repo.commit("shared.txt", "base\n")
    repo.work("w1", "shared.txt", "worker\n")
    repo.work("w1", "clean.txt", "fine\n")
    repo.commit("shared.txt", "main\n")
    (repo.path / "untracked.txt").write_text("mine\n")
    before = repo.snapshot()
    history = repo.git("log", "--format=%H", "refs/workers/w1")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert "merging worker/w1 into main conflicts in 1 path(s):\n  shared.txt\n" in r.err
    assert "nothing was changed" in r.err
    assert repo.snapshot() == before
    assert (repo.path / "shared.txt").read_text() == "main\n"
    assert repo.git("log", "--format=%H", "refs/workers/w1") == history
    assert repo.record("w1")["state"] == "ready"


def test_conflict_into_branch_checked_out_nowhere_changes_nothing(repo: GitRepo) -> None:
    repo.git("branch", "release")
    repo.ok("spawn", "w1", "-f", "release", "--no-launch")
    repo.work("w1", "README", "worker\n")
    repo.git("checkout", "-q", "release")
    repo.commit("README", "release\n")
    repo.git("checkout", "-q", "main")
    release = repo.git("rev-parse", "release")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "  README\n" in r.err
    assert repo.git("rev-parse", "release") == release


def test_dirty_target_worktree_is_refused(repo: GitRepo) -> None:
    repo.work("w1", "f.txt", "f\n")
    (repo.path / "README").write_text("edited, not committed\n")
    before = repo.git("rev-parse", "main")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert f"main is checked out in {repo.path}, which has uncommitted changes (README)" in r.err
    assert repo.git("rev-parse", "main") == before
    assert (repo.path / "README").read_text() == "edited, not committed\n"


def test_untracked_file_in_the_way_is_refused_by_git(repo: GitRepo) -> None:
    repo.work("w1", "f.txt", "from worker\n")
    (repo.path / "f.txt").write_text("my own untracked file\n")
    before = repo.git("rev-parse", "main")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "f.txt" in r.err
    assert repo.git("rev-parse", "main") == before
    assert (repo.path / "f.txt").read_text() == "my own untracked file\n"


def test_blocked_review_refuses_and_force_overrides(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", "exit 1")
    repo.work("w1", "f.txt", "f\n")
    repo.worker("review", "w1")
    before = repo.git("rev-parse", "main")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert "refusing to merge 'w1': its last review blocked (gate exit 1" in r.err
    assert "--force" in r.err
    assert repo.git("rev-parse", "main") == before
    repo.ok("merge", "w1", "--force")
    assert repo.record("w1")["state"] == "merged"


def test_review_required_but_never_passed(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.git("config", "worker.review", "true")
    repo.work("w1", "f.txt", "f\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert ("review is on (worker.review or spawn --review) and it has no passed review "
            "(was never reviewed)") in r.err
    sandbox.script("review-gate", "exit 0")
    repo.ok("review", "w1")
    repo.ok("merge", "w1")


def test_review_required_and_branch_moved_after_the_pass(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.git("config", "worker.review", "true")
    sandbox.script("review-gate", "exit 0")
    repo.work("w1", "f.txt", "f\n")
    repo.ok("review", "w1")
    repo.work("w1", "g.txt", "g\n")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "but the branch has moved to" in r.err


def test_never_reviewed_with_review_off_merges(repo: GitRepo) -> None:
    repo.work("w1", "f.txt", "f\n")
    repo.ok("merge", "w1")


def test_nothing_to_merge_is_refused_and_the_worker_stays_listed(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    before = repo.git("rev-parse", "main")
    registry = repo.git("rev-parse", "refs/workers/w1")
    for args in (("merge", "w1"), ("merge", "w1", "--force"), ("merge", "w1", "--squash")):
        r = repo.worker(*args)
        assert r.code == 1, r
        assert ("error: nothing to merge: worker/w1 has no commits beyond its base main "
                f"({before[:12]})") in r.err
        assert "--force" not in r.err  # force would not change it; the hint must not offer it
    assert repo.git("rev-parse", "main") == before
    assert repo.git("rev-parse", "refs/workers/w1") == registry  # not marked merged
    listed = json.loads(repo.ok("list", "--json").out)
    assert [(w["id"], w["state"]) for w in listed] == [("w1", "ready")]


def test_stopped_worker_without_commits_is_not_merged(repo: GitRepo, held: Path) -> None:
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    repo.ok("stop", "w1")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "nothing to merge: worker/w1 has no commits" in r.err
    assert repo.record("w1")["state"] == "stopped"
    assert "w1" in repo.ok("list").out


def test_squash_twice_makes_no_empty_commit(repo: GitRepo) -> None:
    repo.work("w1", "a.txt", "a\n")
    repo.ok("merge", "w1", "--squash")
    after = repo.git("rev-parse", "main")
    r = repo.ok("merge", "w1", "--squash")
    assert "nothing to merge: w1 is already in main" in r.out
    assert repo.git("rev-parse", "main") == after


def test_running_agent_refused(repo: GitRepo, sandbox: Sandbox) -> None:
    slow = sandbox.script("slow-agent", "sleep 30")
    repo.git("config", "worker.agent.slow.command", str(slow))
    repo.ok("spawn", "w1", "-a", "slow")
    r = repo.worker("merge", "w1")
    assert r.code == 1 and "its agent is still running" in r.err


def test_close_on_merge_closes_the_bd_issue(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.work("talu-gsga", "f.txt", "f\n")  # spawned before the tracker appears
    calls = sandbox.root / "bd-calls"
    sandbox.script("bd", f'printf "%s\\n" "$@" >> "{calls}"')
    (repo.path / ".beads").mkdir()
    repo.git("config", "worker.closeOnMerge", "true")
    r = repo.ok("merge", "talu-gsga")
    commit = repo.git("rev-parse", "main")
    assert "closed issue talu-gsga" in r.out
    assert calls.read_text().splitlines() == ["close", "talu-gsga", "-r", f"merged as {commit}"]


def test_bd_failure_after_merge_is_a_warning(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.work("w1", "f.txt", "f\n")
    sandbox.script("bd", 'echo "database locked" >&2; exit 1')
    repo.git("config", "worker.tracker", "bd")
    repo.git("config", "worker.closeOnMerge", "true")
    r = repo.ok("merge", "w1")
    assert "warning: bd close w1 failed (exit 1): database locked" in r.err
    assert repo.record("w1")["state"] == "merged"


def test_bd_close_after_merge_obeys_tracker_timeout(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.work("w1", "f.txt", "f\n")
    sandbox.script("bd", "exec sleep 60\n")
    repo.git("config", "worker.tracker", "bd")
    repo.git("config", "worker.closeOnMerge", "true")
    repo.git("config", "worker.trackerTimeout", "0.5")
    r = repo.ok("merge", "w1")
    commit = repo.git("rev-parse", "main")
    assert f"warning: 'bd close w1 -r merged as {commit}' did not answer within 0.5 s" in r.err
    assert repo.record("w1")["state"] == "merged"


def test_close_on_merge_off_by_default(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.work("w1", "f.txt", "f\n")
    calls = sandbox.root / "bd-calls"
    sandbox.script("bd", f'echo "$@" >> "{calls}"')
    (repo.path / ".beads").mkdir()
    repo.ok("merge", "w1")
    assert not calls.exists()


@pytest.mark.race
@pytest.mark.parametrize("checked_out", [False, True], ids=["ref-cas", "in-worktree"])
def test_concurrent_merges_lose_no_update(repo: GitRepo, sandbox: Sandbox,
                                          checked_out: bool) -> None:
    ids = [f"w{i}" for i in range(6)]
    repo.ok("spawn", *ids, "--no-launch")
    tips = {wid: repo.work(wid, f"{wid}.txt", f"{wid}\n") for wid in ids}
    if not checked_out:
        repo.git("checkout", "-q", "--detach")  # main checked out nowhere: the ref-CAS path
    procs = [subprocess.Popen(["git", "worker", "merge", wid], cwd=repo.path, env=sandbox.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for wid in ids]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    for wid, tip in tips.items():
        repo.git("merge-base", "--is-ancestor", tip, "main")
        assert repo.record(wid)["state"] == "merged"
    names = repo.git("ls-tree", "--name-only", "main").split()
    assert set(names) == {"README", *(f"{w}.txt" for w in ids)}
    if checked_out:
        assert repo.git("status", "--porcelain") == ""


def test_show_json_has_merge_and_review(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", "exit 0")
    tip = repo.work("w1", "f.txt", "f\n")
    repo.ok("review", "w1")
    repo.ok("merge", "w1")
    text = repo.ok("show", "w1").out
    assert f"merged    into main as {tip[:12]} (fast-forward)" in text
    assert f"at {tip[:7]}" in text and "review    passed " in text
    shown = json.loads(repo.ok("show", "w1", "--json").out)
    assert shown["merge"]["into"] == "refs/heads/main"
    assert Path(shown["worktree"]).exists()


@pytest.mark.parametrize("checked_out", [True, False], ids=["target-checked-out", "target-bare"])
def test_error_before_the_target_moves_changes_nothing(repo: GitRepo, checked_out: bool) -> None:
    repo.work("w1", "feature.txt", "new\n")
    repo.commit("other.txt", "other\n")  # a real merge commit, not a fast-forward
    if not checked_out:
        repo.git("checkout", "-q", "--detach")
    before = repo.snapshot()
    r = repo.worker("merge", "w1", env={"GIT_WORKER_FAILPOINTS": "merge.compute:error"})
    assert r.code == 1 and "failpoint merge.compute triggered" in r.err
    assert repo.snapshot() == before
    assert repo.record("w1")["state"] == "ready"

# Every merge step faulted (error/kill/crash), and the next merge finishing: test_faults.py.
