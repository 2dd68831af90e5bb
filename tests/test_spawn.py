"""git worker spawn: what a user sees, and what plain git sees afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, wait_for


def test_spawn_positional_ids_creates_branch_worktree_and_record(repo: GitRepo, agent) -> None:
    base = repo.git("rev-parse", "main")
    r = repo.ok("spawn", "talu-gsga", "talu-jid5", "-d", "fix the parser")

    assert "spawned talu-gsga" in r.out and "spawned talu-jid5" in r.out
    for wid in ("talu-gsga", "talu-jid5"):
        path = repo.workers_dir / wid
        assert str(path) in repo.worktrees()
        assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=path) == f"worker/{wid}"
        record = repo.record(wid)
        assert record["id"] == wid
        assert record["branch"] == f"refs/heads/worker/{wid}"
        assert record["base"] == {"name": "main", "ref": "refs/heads/main", "oid": base,
                                  "fetched": False, "fetch_error": None}
        assert record["worktree"] == str(path)
        assert record["schema_version"] == 1
        shown = repo.wait(wid, "exited")
        assert shown["exit_code"] == 0 and shown["problems"] == []
        assert repo.git("log", "-1", "--format=%s", f"worker/{wid}") == f"work on {wid}"


def test_dash_t_and_positional_ids_mix(repo: GitRepo) -> None:
    repo.ok("spawn", "a1", "-t", "b2", "--no-launch")
    assert set(repo.refs("refs/workers/")) == {"refs/workers/a1", "refs/workers/b2"}


def test_worktree_is_accepted_by_plain_git(repo: GitRepo) -> None:
    repo.commit("src/app.py", "print('hi')\n")
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    assert (wt / "src" / "app.py").read_text() == "print('hi')\n"
    assert repo.git("status", "--porcelain", cwd=wt) == ""
    repo.git("fsck", "--no-progress")
    assert repo.git("reflog", "show", "--format=%gs", "worker/w1") == "git-worker: spawn w1"
    repo.git("worktree", "remove", str(wt))
    assert str(wt) not in repo.worktrees()


def test_no_leftovers_from_main_head_when_base_differs(repo: GitRepo) -> None:
    # dulwich's add_worktree checks out main's HEAD first and leaves such files behind.
    repo.git("branch", "release")
    repo.commit("only-on-main.txt", "x\n")
    repo.ok("spawn", "w1", "-f", "release", "--no-launch")
    wt = repo.workers_dir / "w1"
    assert not (wt / "only-on-main.txt").exists()
    assert repo.git("status", "--porcelain", cwd=wt) == ""


def test_same_directory_name_gets_its_own_administration(repo: GitRepo) -> None:
    # Someone's unrelated worktree whose admin dir is already called "w1".
    repo.git("worktree", "add", "-q", "-b", "other", str(repo.path.parent / "elsewhere" / "w1"))
    repo.ok("spawn", "w1", "--no-launch")
    listed = repo.git("worktree", "list", "--porcelain")
    assert "branch refs/heads/other" in listed and "branch refs/heads/worker/w1" in listed
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD",
                    cwd=repo.path.parent / "elsewhere" / "w1") == "other"


def test_repeated_id_is_one_task(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "w1", "-t", "w1", "--no-launch")
    assert list(repo.refs("refs/workers/")) == ["refs/workers/w1"]


def test_json_output_is_the_new_records(repo: GitRepo) -> None:
    import json

    out = json.loads(repo.ok("spawn", "w1", "--no-launch", "--json").out)
    assert [r["id"] for r in out] == ["w1"]
    assert out[0]["state"] == "ready"


def test_dry_run_changes_nothing(repo: GitRepo) -> None:
    before = repo.snapshot()
    r = repo.ok("spawn", "w1", "--dry-run")
    assert "would spawn w1: branch worker/w1 from main" in r.out
    assert repo.snapshot() == before


def test_spawning_an_existing_worker_fails_and_keeps_it(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert "worker 'w1' already exists (state ready, branch worker/w1)" in r.err
    assert "hint: git worker show w1 says what it holds" in r.err
    assert "git worker rm w1" in r.err
    assert repo.snapshot() == before


def test_one_failing_id_does_not_undo_the_others(repo: GitRepo) -> None:
    repo.git("branch", "worker/b")  # b's branch is taken
    r = repo.worker("spawn", "a", "b", "c", "--no-launch")
    assert r.code == 1
    assert "error: b: branch worker/b already exists" in r.err
    assert set(repo.refs("refs/workers/")) == {"refs/workers/a", "refs/workers/c"}
    # The others are whole workers, by plain git; the failed one left nothing.
    assert repo.git("for-each-ref", "--format=%(refname)", "refs/heads/worker/") == \
        "refs/heads/worker/a\nrefs/heads/worker/b\nrefs/heads/worker/c"
    assert [p.name for p in sorted(repo.workers_dir.iterdir())] == ["a", "c"]
    assert repo.git("-C", str(repo.workers_dir / "c"), "symbolic-ref", "HEAD") == \
        "refs/heads/worker/c"
    assert r.out.splitlines()[:2] == [
        f"spawned a  worker/a  from main ({repo.git('rev-parse', '--short=7', 'main')})  "
        f"../{repo.workers_dir.name}/a  [ready]",
        f"spawned c  worker/c  from main ({repo.git('rev-parse', '--short=7', 'main')})  "
        f"../{repo.workers_dir.name}/c  [ready]"]


# Setup commands that hold each spawn at its setup step: each says it got there
# (a file in $MARKS), then waits for $MARKS/go — ignoring ^C, like a setup step that is
# busy when it comes.
HOLD = ("sh -c 'trap \"\" INT; touch \"$MARKS/$GIT_WORKER_ID\"; "
        "while [ ! -e \"$MARKS/go\" ]; do sleep 0.05; done'")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: ids are spawned one by one")
def test_ids_spawn_at_once_and_are_told_in_the_order_given(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    """z's setup waits until a — given after it — is a whole worker: only spawns that run
    at once can both finish; the lines still come in the order given."""
    marks = sandbox.root / "marks"
    marks.mkdir()
    repo.git("config", "--add", "worker.setup",
             "sh -c '[ \"$GIT_WORKER_ID\" != z ] && exit 0; for i in $(seq 1200); do "
             "git -C \"$MAIN\" show refs/workers/a:worker.json | grep -q ready && exit 0; "
             "sleep 0.05; done; exit 1'")
    r = repo.worker("spawn", "--no-launch", "z", "a", env={"MAIN": str(repo.path)})
    assert r.code == 0, r.err
    assert [line.split()[1] for line in r.out.splitlines()[:2]] == ["z", "a"]
    assert repo.record("z")["state"] == repo.record("a")["state"] == "ready"


def test_sigint_during_a_parallel_spawn_leaves_no_half_worker(sandbox: Sandbox,
                                                              repo: GitRepo) -> None:
    """^C (to the whole process group, as a terminal sends it) while spawns are held at
    their setup step, and more wait their turn: none of them is left, by plain git."""
    marks = sandbox.root / "marks"
    marks.mkdir()
    repo.git("config", "--add", "worker.setup", HOLD)
    before = repo.snapshot()
    ids = ["a", "b", "c", "d", "e"]
    err = sandbox.root / "spawn.err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(CHECKOUT / "git-worker"), "spawn", "--no-launch", *ids],
            cwd=repo.path, env={**sandbox.env, "MARKS": str(marks)}, start_new_session=True,
            stdout=subprocess.PIPE, stderr=stderr, text=True)
    held = min(len(ids), os.cpu_count() or 1)  # one spawn per core at a time
    wait_for(lambda: len(list(marks.iterdir())) == held)
    os.killpg(proc.pid, signal.SIGINT)
    wait_for(lambda: "interrupted: rolling back" in err.read_text())
    (marks / "go").touch()  # the held setup steps end; their spawns must not go on
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.read_text()
    assert "spawned" not in out
    assert sorted(p.name for p in marks.iterdir()) == sorted([*ids[:held], "go"])
    assert repo.snapshot() == before
    assert repo.git("for-each-ref", "refs/workers/", "refs/heads/worker/") == ""
    assert repo.git("worktree", "list", "--porcelain").count("worktree ") == 1


def _git_processes(repo: GitRepo, *argv: str) -> list[str]:
    """`git <subcommand>` of every git `git worker ARGV` runs (GIT_TRACE), sorted."""
    trace = repo.sandbox.root / "git-trace"
    trace.unlink(missing_ok=True)
    repo.ok(*argv, env={"GIT_TRACE": str(trace)})
    words = [line.split("built-in: git ", 1)[1].split()
             for line in trace.read_text().splitlines() if "built-in: git " in line]
    return sorted(next(w for w in ws if not w.startswith(("-", "core.", "checkout.")))
                  .strip("'") for ws in words)


def test_spawn_runs_one_git_for_the_claim_and_the_branch_and_none_to_ask_settings(
        repo: GitRepo) -> None:
    """The claim and the branch are one `update-ref` transaction; checkout.workers is read
    with the settings, and a base commit that is a loose object is known from its file.
    Besides the checkout (`read-tree`): the repository, the settings, the claim with the
    branch, the leases held, the record `ready`."""
    repo.ok("spawn", "--no-launch", "w0")  # the lease store exists: its leases are checked
    assert _git_processes(repo, "spawn", "--no-launch", "w1") == [
        "cat-file", "config", "read-tree", "rev-parse", "update-ref", "update-ref"]
    assert repo.git("reflog", "show", "--format=%gs", "refs/workers/w1").splitlines()[-1] \
        == "git-worker: spawn w1"


def test_an_existing_branch_is_refused_before_anything_is_made(repo: GitRepo) -> None:
    """Claim and branch are created together or not at all: the branch there already, the
    claim is never made (no record, no reflog, no lease), and the branch is the user's."""
    repo.git("branch", "worker/b")
    mine = repo.git("rev-parse", "worker/b")
    before = repo.snapshot()
    r = repo.worker("spawn", "b", "--no-launch")
    assert r.code == 1
    assert "error: b: branch worker/b already exists" in r.err
    assert "hint: delete or rename it (git branch -m worker/b <new>)" in r.err
    assert repo.snapshot() == before
    assert repo.git("rev-parse", "worker/b") == mine


def test_a_user_setting_of_checkout_workers_is_kept(repo: GitRepo) -> None:
    """spawn checks out in parallel (checkout.workers=0) only when the user chose nothing."""
    for chosen, expected in ((None, "checkout.workers=0"), ("1", None)):
        if chosen:
            repo.git("config", "checkout.workers", chosen)
        trace = repo.sandbox.root / "git-trace"
        trace.unlink(missing_ok=True)
        wid = f"w{chosen or 0}"
        repo.ok("spawn", "--no-launch", wid, env={"GIT_TRACE2": str(trace)})
        checkout = next(line for line in trace.read_text().splitlines()
                        if " start " in line and "read-tree" in line)  # its whole argv
        assert ("checkout.workers=0" in checkout) == (expected is not None), checkout


def test_a_packed_base_and_a_tag_of_it_are_peeled_by_git(repo: GitRepo) -> None:
    """Once git has packed the base's commit, git says what it is (one more process)."""
    base = repo.git("rev-parse", "main")
    repo.git("tag", "-a", "-m", "release", "v1")
    repo.git("gc", "--quiet")
    assert not (repo.path / ".git" / "objects" / base[:2] / base[2:]).exists()
    assert _git_processes(repo, "spawn", "--no-launch", "w1").count("rev-parse") == 2
    repo.ok("spawn", "--no-launch", "w2", "-f", "v1")
    for wid in ("w1", "w2"):
        assert repo.record(wid)["base"]["oid"] == base
        assert repo.git("rev-parse", f"worker/{wid}") == base
