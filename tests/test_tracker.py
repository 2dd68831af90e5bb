"""Tasks from bd: every shape `bd show --json` prints, every way bd fails, the claim.

The stand-in `bd` answers with the JSON shapes documented in beads
(shared/reference/beads-bd.md) and logs how it was called: argv, cwd, and whether its
stdin was closed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox

ISSUE = {
    "id": "talu-gsga", "title": "Pattern-collapse pass", "status": "open", "priority": 2,
    "issue_type": "chore", "owner": "maphew@gmail.com", "assignee": "",
    "description": "Quantify near-duplicate functions; stage but do not merge.",
    "design": "One pass per module.", "acceptance_criteria": "Inventory committed.",
    "created_at": "2026-04-18T16:19:12Z", "dependency_count": 0,
}


def install_bd(sandbox: Sandbox, repo: GitRepo, *, show: str, show_exit: int = 0,
               show_err: str = "", update: str = "ok", beads_dir: bool = True) -> Path:
    """A stand-in bd. ``update``: ok | old (rejects --claim) | refuse (bd's exit-0 error)."""
    log = sandbox.root / "bd.log"
    answers = sandbox.root / "bd-answers"
    answers.mkdir(exist_ok=True)
    (answers / "show.out").write_text(show)
    (answers / "show.err").write_text(show_err)
    updated = json.dumps([{**ISSUE, "status": "in_progress", "assignee": "someone"}])
    (answers / "update.out").write_text(updated)
    (answers / "ready.out").write_text(json.dumps([
        {"id": "talu-gsga", "title": "Pattern-collapse pass"},
        {"id": "bd-a3f8e9.1", "title": "Child"}]))
    sandbox.script("bd", f"""
        {{ printf 'argv:'; printf ' %s' "$@"; printf '\\n'; echo "cwd: $PWD"
           if read -r _; then echo "stdin: open"; else echo "stdin: closed"; fi; }} >> {log}
        A={answers}
        case "$1" in
        show) cat "$A/show.out"; cat "$A/show.err" >&2; exit {show_exit} ;;
        update)
            case "{update} $*" in
            "old "*--claim*) echo 'Error: unknown flag: --claim' >&2; exit 1 ;;
            "refuse "*) echo "Error claiming $2: already claimed by alice" >&2; exit 0 ;;
            esac
            cat "$A/update.out" ;;
        ready) cat "$A/ready.out" ;;
        *) echo "unexpected bd call: $*" >&2; exit 64 ;;
        esac
    """)
    if beads_dir:
        (repo.path / ".beads").mkdir(exist_ok=True)
        (repo.path / ".beads" / "config.yaml").write_text("prefix: talu\n")
        repo.git("add", ".beads")
        repo.git("commit", "-q", "-m", "beads")
    return log


def bd_calls(log: Path) -> list[str]:
    return [ln.removeprefix("argv: ") for ln in log.read_text().splitlines()
            if ln.startswith("argv:")]


@pytest.mark.parametrize("shape", ["array", "object", "envelope"])
def test_every_bd_show_shape_becomes_the_task(repo: GitRepo, sandbox: Sandbox, agent,
                                              shape: str) -> None:
    text = {"array": json.dumps([ISSUE]), "object": json.dumps(ISSUE),
            "envelope": json.dumps({"schema_version": 1, "data": [ISSUE]})}[shape]
    log = install_bd(sandbox, repo, show=text)
    repo.ok("spawn", "talu-gsga")
    shown = repo.wait("talu-gsga", "exited")
    assert shown["task"] == {"title": "Pattern-collapse pass", "source": "bd", "claimed": True}
    prompt = repo.ok("prompt", "talu-gsga").out
    assert "task talu-gsga: Pattern-collapse pass" in prompt
    assert "Quantify near-duplicate functions; stage but do not merge." in prompt
    assert "Design:\nOne pass per module." in prompt
    assert "Acceptance criteria:\nInventory committed." in prompt
    assert bd_calls(log) == ["show talu-gsga --json", "update talu-gsga --claim --json"]
    text_log = log.read_text()
    assert f"cwd: {repo.path}" in text_log  # from the main worktree
    assert "stdin: open" not in text_log


def test_bd_auto_detected_only_with_a_beads_dir(repo: GitRepo, sandbox: Sandbox) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]), beads_dir=False)
    repo.ok("spawn", "talu-gsga", "--no-launch")
    assert repo.record("talu-gsga")["task"]["source"] == "cli"
    assert not log.exists()


def test_no_launch_reads_but_does_not_claim(repo: GitRepo, sandbox: Sandbox) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]))
    repo.ok("spawn", "talu-gsga", "--no-launch")
    assert bd_calls(log) == ["show talu-gsga --json"]
    assert repo.record("talu-gsga")["task"] == {"title": "Pattern-collapse pass",
                                                "source": "bd", "claimed": False}


def test_claim_falls_back_on_bd_without_claim(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]), update="old")
    repo.ok("spawn", "talu-gsga", env={"BD_ACTOR": "worker-bot"})
    assert bd_calls(log)[1:] == ["update talu-gsga --claim --json",
                                 "update talu-gsga --status in_progress --assignee worker-bot "
                                 "--json"]


def test_refused_claim_undoes_the_spawn(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]), update="refuse")
    before = repo.snapshot()
    r = repo.worker("spawn", "talu-gsga")
    assert r.code == 1
    assert "bd refused to claim 'talu-gsga': Error claiming talu-gsga: already claimed by alice" \
        in r.err
    assert repo.snapshot() == before
    assert not (repo.path / ".git" / "workers" / "talu-gsga").exists()
    # The agent never started: its stand-in would have left the prompt it saw.
    assert not list(repo.path.glob(".git/workers/*/prompt.md.seen"))
    assert len(bd_calls(log)) == 2


def test_failed_launch_gives_the_claim_back(repo: GitRepo, sandbox: Sandbox) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]))
    repo.git("config", "worker.agent.gone.command", str(sandbox.root / "no-such-agent"))
    r = repo.worker("spawn", "talu-gsga", "-a", "gone")
    assert r.code == 1 and "cannot start agent 'gone'" in r.err
    assert bd_calls(log)[1:] == ["update talu-gsga --claim --json",
                                 "update talu-gsga --status open --assignee  --json"]
    assert repo.refs("refs/workers/") == {}


BD_FAILURES = {
    "not found": (json.dumps({"schema_version": 1, "error": "issue talu-gsga not found",
                              "code": "not_found"}), 1, "bd has no issue 'talu-gsga'"),
    "empty array": ("[]", 0, "bd has no issue 'talu-gsga'"),
    "garbage": ("<html>proxy error</html>", 0,
                "bd show talu-gsga --json answered something that is not JSON: "
                "<html>proxy error</html>"),
    "failing": ("", 2, "bd show talu-gsga exited 2: database is locked"),
    "no issue in it": (json.dumps({"hello": 1}), 0,
                       "bd show talu-gsga --json answered JSON without an issue in it"),
}


@pytest.mark.parametrize("case", sorted(BD_FAILURES))
def test_bd_failures_are_clear_and_create_nothing(repo: GitRepo, sandbox: Sandbox, agent,
                                                  case: str) -> None:
    out, code, message = BD_FAILURES[case]
    err = out if case == "not found" else ("database is locked" if case == "failing" else "")
    install_bd(sandbox, repo, show="" if case == "not found" else out, show_exit=code,
               show_err=err)
    before = repo.snapshot()
    r = repo.worker("spawn", "talu-gsga")
    assert r.code == 1
    assert f"error: talu-gsga: {message}" in r.err
    assert "hint:" in r.err
    assert repo.snapshot() == before


def test_bd_missing_while_configured(repo: GitRepo) -> None:
    repo.git("config", "worker.tracker", "bd")
    before = repo.snapshot()
    r = repo.worker("spawn", "talu-gsga")
    assert r.code == 1
    assert "bd (beads) is not on PATH, and worker.tracker needs it" in r.err
    assert "git config worker.tracker none" in r.err
    assert repo.snapshot() == before


def test_bd_that_hangs_times_out(repo: GitRepo, sandbox: Sandbox) -> None:
    install_bd(sandbox, repo, show="[]")
    sandbox.script("bd", "sleep 30\n")
    repo.git("config", "worker.trackerTimeout", "0.5")
    r = repo.worker("spawn", "talu-gsga", "--no-launch")
    assert r.code == 1
    assert "'bd show talu-gsga --json' did not answer within 0.5 s" in r.err
    assert repo.refs("refs/workers/") == {}


def test_unknown_to_bd_with_description_uses_it(repo: GitRepo, sandbox: Sandbox) -> None:
    install_bd(sandbox, repo, show="[]")
    r = repo.ok("spawn", "adhoc-1", "-d", "tidy the README", "--no-launch")
    assert "note: bd has no issue 'adhoc-1'; the task is the -d text" in r.err
    assert "tidy the README" in repo.ok("prompt", "adhoc-1").out
    assert repo.record("adhoc-1")["task"]["source"] == "cli"


def test_tracker_none_never_calls_bd(repo: GitRepo, sandbox: Sandbox) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([ISSUE]))
    repo.git("config", "worker.tracker", "none")
    repo.ok("spawn", "talu-gsga", "-d", "text", "--no-launch")
    assert not log.exists()


def test_ready_issues_for_completion(repo: GitRepo, sandbox: Sandbox) -> None:
    install_bd(sandbox, repo, show="[]")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from git_worker import tracker; "
            "print(tracker.ready_issues(sys.argv[2]))")
    out = subprocess.run([sys.executable, "-c", code, str(CHECKOUT / "lib"), str(repo.path)],
                         env=sandbox.env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[('talu-gsga', 'Pattern-collapse pass'), ('bd-a3f8e9.1', 'Child')]"
    sandbox.script("bd", "echo garbage\n")
    out = subprocess.run([sys.executable, "-c", code, str(CHECKOUT / "lib"), str(repo.path)],
                         env=sandbox.env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_spawner_killed_after_the_claim_gives_it_back_on_repair(repo: GitRepo,
                                                                sandbox: Sandbox, agent) -> None:
    log = install_bd(sandbox, repo, show=json.dumps([{**ISSUE, "assignee": "bob"}]))
    r = repo.worker("spawn", "talu-gsga", env={"GIT_WORKER_FAILPOINTS": "spawn.bd-claim:kill"})
    assert r.code != 0  # killed at the failpoint
    assert repo.record("talu-gsga")["task"]["bd_before"] == {"status": "open",
                                                             "assignee": "bob"}
    repo.ok("fsck", "--repair")
    assert repo.refs("refs/workers/") == {}
    assert bd_calls(log)[1:] == ["update talu-gsga --claim --json",
                                 "update talu-gsga --status open --assignee bob --json"]
