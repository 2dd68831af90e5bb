"""git worker list: records compared with reality; problems reported, never hidden."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, release, wait_for


def _rows(repo: GitRepo) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}


def test_list_human_table(repo: GitRepo, agent) -> None:
    repo.ok("spawn", "talu-gsga", "talu-jid5")
    repo.wait("talu-gsga", "exited")
    repo.wait("talu-jid5", "exited")
    lines = repo.ok("list").out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "BRANCH", "BASE", "AHEAD", "REVIEW", "AGENT",
                                "AGE", "PATH"]
    assert lines[1].split()[:7] == ["talu-gsga", "exited", "worker/talu-gsga", "main", "1", "-",
                                    "stand-in"]
    assert lines[2].split()[:2] == ["talu-jid5", "exited"]
    def without_age(rows: list[str]) -> list[list[str]]:
        return [row.split()[:7] + row.split()[8:] for row in rows]

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


# --- at a glance: commits ahead, uncommitted, the review verdict, the agent's message -------

def _column(repo: GitRepo, header: str) -> dict[str, str]:
    """One column of the human table, by worker id."""
    lines = repo.ok("list").out.splitlines()
    at = lines[0].index(header)
    return {ln.split()[0]: ln[at:].split()[0] for ln in lines[1:] if not ln.startswith(" ")}


HOOK = CHECKOUT / "lib" / "git_worker" / "hooks" / "claude-code" / "event"


def test_ahead_counts_own_commits_only(repo: GitRepo) -> None:
    repo.ok("spawn", "idle", "--no-launch")
    repo.work("two", "a.txt")
    repo.work("two", "b.txt")
    repo.work("synced", "c.txt")
    repo.commit("main.txt", "m\n")
    repo.git("merge", "-q", "--no-edit", "main", cwd=repo.workers_dir / "synced")  # brings 1
    repo.work("landed", "d.txt")
    repo.git("merge", "-q", "--ff-only", "worker/landed")
    rows = _rows(repo)
    assert {w: rows[w]["ahead"] for w in rows} == {"idle": 0, "two": 2, "synced": 2,
                                                   "landed": 0}
    assert repo.show("two")["ahead"] == 2 and repo.show("synced")["ahead"] == 2
    repo.git("update-ref", "-d", "refs/heads/worker/two")
    assert _rows(repo)["two"]["ahead"] is None  # unknown, never a made-up 0
    assert _column(repo, "AHEAD") == {"idle": "0", "two": "?", "synced": "2", "landed": "0"}


def test_verdict_passed_blocked_stale_and_never(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", 'exit "$(cat "$GIT_WORKER_WORKTREE/verdict" 2>/dev/null '
                                  '|| echo 0)"\n')
    for w in ("ok", "moved", "no", "never"):
        repo.work(w, "f.txt")
    repo.ok("review", "ok")
    repo.ok("review", "moved")
    repo.work("moved", "g.txt")
    (repo.workers_dir / "no" / "verdict").write_text("1\n")
    assert repo.worker("review", "no").code == 1
    rows = _rows(repo)
    assert {w: rows[w]["verdict"] for w in rows} == {"ok": "passed", "moved": "stale",
                                                     "no": "blocked", "never": None}
    assert repo.show("moved")["verdict"] == "stale"
    assert _column(repo, "REVIEW") == {"ok": "passed", "moved": "stale", "no": "blocked",
                                       "never": "-"}


def test_uncommitted_is_told_by_show_and_not_checked_by_list(repo: GitRepo) -> None:
    repo.ok("spawn", "clean", "edited", "untracked", "staged", "--no-launch")
    (repo.workers_dir / "edited" / "README").write_text("changed\n")
    (repo.workers_dir / "untracked" / "new.txt").write_text("new\n")
    (repo.workers_dir / "staged" / "s.txt").write_text("s\n")
    repo.git("add", "s.txt", cwd=repo.workers_dir / "staged")
    assert {w: repo.show(w)["uncommitted"] for w in ("clean", "edited", "untracked", "staged")} \
        == {"clean": False, "edited": True, "untracked": True, "staged": True}
    assert "\nchanges   uncommitted (modified, staged or untracked files)\n" in \
        repo.ok("show", "edited").out
    assert "\nchanges   none uncommitted\n" in repo.ok("show", "clean").out
    assert all(row["uncommitted"] is None for row in _rows(repo).values())
    shutil.rmtree(repo.workers_dir / "clean")
    assert repo.show("clean")["uncommitted"] is None
    (repo.workers_dir / "untracked" / ".git").unlink()  # no longer a worktree at all
    (repo.path / "main-is-dirty").write_text("x\n")
    assert repo.show("untracked")["uncommitted"] is None


def test_waiting_worker_shows_the_agents_message(repo: GitRepo, sandbox: Sandbox) -> None:
    asker = sandbox.script("asker", f"""
        printf '{{"message": "May I run the migrations?\\\\nyes/no"}}' | {HOOK} waiting
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
        echo '{{}}' | {HOOK} running
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/end" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent.asker.command", str(asker))
    repo.ok("spawn", "w1", "-a", "asker")
    shown = repo.wait("w1", "waiting")
    assert shown["message"] == "May I run the migrations? yes/no"
    assert _rows(repo)["w1"]["message"] == "May I run the migrations? yes/no"
    lines = repo.ok("list").out.splitlines()
    assert lines[2] == "  > May I run the migrations? yes/no"
    assert "\nmessage   May I run the migrations? yes/no\n" in repo.ok("show", "w1").out
    release(repo, "w1")
    assert repo.wait("w1", "running")["message"] is None
    assert _rows(repo)["w1"]["message"] is None
    (repo.path / ".git" / "workers" / "w1" / "end").touch()


def test_an_agents_message_carries_no_terminal_control_sequences(repo: GitRepo,
                                                                 sandbox: Sandbox) -> None:
    asker = sandbox.script("asker", f"""
        printf '{{"message": "ok \\u001b]0;pwned\\u0007\\u001b[2Jgone? \\u0000end"}}' \\
            | {HOOK} waiting
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent.asker.command", str(asker))
    repo.ok("spawn", "w1", "-a", "asker")
    assert repo.wait("w1", "waiting")["message"] == "ok ]0;pwned [2Jgone? end"
    for out in (repo.ok("list").out, repo.ok("show", "w1").out, repo.ok("list", "--json").out):
        assert "\x1b" not in out and "\x07" not in out and "\x00" not in out
    assert "  > ok ]0;pwned [2Jgone? end" in repo.ok("list").out
    release(repo, "w1")


def test_realpaths_resolve_as_os_path_realpath(tmp_path: Path) -> None:
    """list and fsck resolve each directory once (worktrees.RealPaths), and must find what
    realpath finds: symlinked directories and files, '..' after a symlink, missing paths."""
    from git_worker.worktrees import RealPaths

    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "real" / "deep" / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real" / "deep")
    (tmp_path / "real" / "filelink").symlink_to("deep/file")
    (tmp_path / "loop").symlink_to("loop")
    real = RealPaths()
    for rel in ("real/deep/file", "link/file", "link/../deep", "real/filelink", "link",
                "link/missing/more", "real/./deep", "loop", "loop/x", "link/file"):
        path = str(tmp_path / rel)
        assert real(path) == os.path.realpath(path), rel


# Runs a git-worker command in this process's Python, counting the files it opens in the
# worktrees' administration (<common-dir>/worktrees/<admin-id>/…) with an audit hook.
_COUNT_ADMIN_READS = """
import os, sys
sys.path.insert(0, sys.argv[1])
admin = os.path.join(os.path.realpath(".git"), "worktrees") + os.sep
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(admin):
        opened.append(args[0])
sys.addaudithook(hook)
from git_worker.cli import main
code = main(sys.argv[2:])
print(len(opened), file=sys.stderr)
raise SystemExit(code)
"""


def _admin_reads(repo: GitRepo, *argv: str) -> int:
    r = repo.sandbox.run(sys.executable, "-c", _COUNT_ADMIN_READS, CHECKOUT / "lib", *argv,
                         cwd=repo.path)
    assert r.code == 0, r
    return int(r.err.split()[-1])


@pytest.mark.parametrize("argv", [["list", "--json"], ["fsck"]])
def test_each_worktree_is_read_alike_however_many_workers(repo: GitRepo,
                                                          argv: list[str]) -> None:
    """Linear, not quadratic: list and fsck looked for every worker's admin dir by reading
    every admin dir's gitdir (5,500 files for 100 workers, 1,000,000 for 1,000). Each
    worker added now costs the same reads, whether it is the 3rd or the 7th."""
    reads = []
    for ids in (["w1", "w2"], ["w3", "w4"], ["w5", "w6"]):
        repo.ok("spawn", "--no-launch", *ids)
        reads.append(_admin_reads(repo, *argv))
    assert reads[2] - reads[1] == reads[1] - reads[0] > 0, reads


def test_a_worktrees_gitdir_of_any_bytes_does_not_stop_list(repo: GitRepo) -> None:
    """The admin dirs are writable by the agents: bytes that are no UTF-8 in one `gitdir`
    make that worker's worktree unregistered, and every other worker's row stays right
    (list reads every admin dir's gitdir once: one bad file must not stop it)."""
    repo.ok("spawn", "--no-launch", "w1", "w2")
    (repo.path / ".git" / "worktrees" / "w2" / "gitdir").write_bytes(b"/tmp/\xff\xfe/.git\n")
    rows = _rows(repo)
    assert rows["w1"]["problems"] == []
    assert rows["w2"]["problems"] == [
        f"worktree {repo.workers_dir / 'w2'} is not a registered git worktree"]


# --- records read before: list asks git only for the ones that changed ----------------------

# Runs a git-worker command in this process's Python, printing the git subcommands it ran.
_GIT_PROCESSES = """
import sys
sys.path.insert(0, sys.argv[1])
ran = []
def hook(event, args):
    if event in ("os.posix_spawn", "subprocess.Popen") and "git" in str(args[0]):
        words = [str(a) for a in args[1]][1:]
        while words[0].startswith("-"):  # git's own options: -C DIR, -c NAME=VALUE, --x=y
            words = words[2:] if words[0] in ("-C", "-c") else words[1:]
        ran.append(words[0])
sys.addaudithook(hook)
from git_worker.cli import main
code = main(sys.argv[2:])
print(" ".join(ran), file=sys.stderr)
raise SystemExit(code)
"""


def _git_run_by(repo: GitRepo, *argv: str) -> list[str]:
    r = repo.sandbox.run(sys.executable, "-c", _GIT_PROCESSES, CHECKOUT / "lib", *argv,
                         cwd=repo.path)
    assert r.code == 0, r
    return r.err.split("\n")[-2].split()


def _forge(repo: GitRepo, worker_id: str, **changes: object) -> None:
    """A new commit of ``worker_id``'s record with ``changes``, written with plain git."""
    record = {**repo.record(worker_id), **changes}
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input=json.dumps(record, indent=2) + "\n").out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    parent = repo.git("rev-parse", f"refs/workers/{worker_id}").strip()
    commit = repo.git("commit-tree", tree, "-p", parent, "-m", "changed")
    repo.git("update-ref", f"refs/workers/{worker_id}", commit)


def test_list_reads_only_the_records_that_changed_and_tells_each_change(repo: GitRepo) -> None:
    """The records of the commits read before come from list's cache (a commit never
    changes); a record that changed is a new commit, read from git, and shown."""
    repo.ok("spawn", "--no-launch", "w1", "w2")
    repo.git("commit", "--allow-empty", "-m", "main moves on")  # behind: a rev-list
    first = _git_run_by(repo, "list", "--json")
    assert first == ["rev-parse", "for-each-ref", "cat-file", "rev-list"], first
    again = _git_run_by(repo, "list", "--json")
    assert again == ["rev-parse", "for-each-ref", "rev-list"], again
    before = _rows(repo)
    _forge(repo, "w2", model="a-model-of-its-own")
    assert _git_run_by(repo, "list", "--json").count("cat-file") == 1
    after = _rows(repo)
    assert after["w2"]["model"] == "a-model-of-its-own" and after["w1"] == before["w1"]
    assert "cat-file" not in _git_run_by(repo, "list", "--json")
    cache = repo.path / ".git" / "workers" / ".records"
    assert cache.stat().st_mode & 0o777 == 0o600
    repo.ok("rm", "w1")
    assert list(_rows(repo)) == ["w2"]
    # the records of refs gone are forgotten (not b"w1": pytest-xdist's gw1 is in paths)
    assert b'"id": "w1"' not in cache.read_bytes()


@pytest.mark.parametrize("damage", [
    b"", b"garbage", b"git-worker record cache 1\n", b"git-worker record cache 1\nabc",
    b"git-worker record cache 1\n%(oid)s -5\n{}\n", b"git-worker record cache 1\n%(oid)s 99\n{}\n",
    b"git-worker record cache 1\n%(oid)s 2\n{}", b"git-worker record cache 2\n%(oid)s 2\n{}\n",
])
def test_a_damaged_record_cache_is_ignored_and_rewritten(repo: GitRepo, damage: bytes) -> None:
    repo.ok("spawn", "--no-launch", "w1")
    truth = repo.ok("list", "--json").out
    cache = repo.path / ".git" / "workers" / ".records"
    oid = repo.git("rev-parse", "refs/workers/w1").strip().encode()
    cache.write_bytes(damage.replace(b"%(oid)s", oid))
    assert repo.ok("list", "--json").out == truth
    assert repo.ok("list", "--json").out == truth
    assert b'"id": "w1"' in cache.read_bytes()


def test_a_cached_record_names_its_own_id_or_is_corrupt(repo: GitRepo) -> None:
    """A record copied under another ref is corrupt, from the cache as from git."""
    repo.ok("spawn", "--no-launch", "w1")
    repo.ok("list")
    repo.git("update-ref", "refs/workers/w2", "refs/workers/w1")
    for _ in range(2):
        rows = _rows(repo)
        assert rows["w2"]["state"] == "corrupt"
        assert "is the record of 'w1'" in rows["w2"]["problems"][0]


def test_fsck_leaves_lists_record_cache_alone(repo: GitRepo) -> None:
    repo.ok("spawn", "--no-launch", "w1")
    repo.ok("list")
    runtime = repo.path / ".git" / "workers"
    (runtime / ".records.tmp4242").write_bytes(b"cut short by a kill -9")
    assert repo.ok("fsck").out.strip() == "ok: registry, branches and worktrees agree"
    repo.ok("fsck", "--repair")
    assert (runtime / ".records").exists()


def test_fsck_reads_every_record_once(repo: GitRepo) -> None:
    """One for-each-ref of the records and one cat-file, whatever else it checks (it read
    them all a second time, for the queue: ~150 ms with 1,000 workers). fsck never uses
    list's cache: it checks the objects themselves."""
    repo.ok("spawn", "--no-launch", "w1", "w2")
    repo.ok("list")
    ran = _git_run_by(repo, "fsck")
    assert ran.count("cat-file") == 1 and ran.count("for-each-ref") == 1, " ".join(ran)
