"""The trust boundary (docs/security.md): an agent, its worktree, its branch and the
registry records are untrusted; decisions rest on the user's own git config and files.

Each test plays the attacker for real: a stand-in agent that rewrites what it can write,
a record forged with plain git, a ref update aimed at a live worker from outside.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import GitRepo, Sandbox, log_of, wait_for
from fake_models import AnthropicMessages, GeminiGenerate, OpenAIResponsesShell, serve

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


# --- what an agent can write ----------------------------------------------------------------

# Files under the git dir an agent must not write, and how the probe writes each.
GIT_DIR_TARGETS = ("config", "hooks/pre-commit", "info/exclude", "HEAD", "packed-refs",
                   "refs/heads/main", "refs/workers/w1", "refs/tags/forged")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("npm") is None, reason="the codex CLI comes from npm")
def test_real_codex_commits_on_its_branch_and_writes_nothing_else_under_git(
        repo: GitRepo, sandbox: Sandbox) -> None:
    """The real codex CLI, started by the adapter, runs (in its sandbox) what a loopback
    model asks: write to each GIT_DIR_TARGETS file, then commit. The commit lands; every
    write is refused."""
    from test_real_agents import with_cli

    git = repo.path / ".git"
    probe = " ".join(f'(echo x >> "{git / t}") 2>/dev/null && echo "WROTE {t}" '
                     f'|| echo "denied {t}";' for t in GIT_DIR_TARGETS)
    probe += (" echo hello > hello.txt && git add hello.txt && "
              "git commit -q -m 'Add hello.txt' && echo COMMITTED")
    served = serve(OpenAIResponsesShell, shell_command=probe)
    url, requests = next(served)
    try:
        with_cli(sandbox, "codex")
        sandbox.env["OPENAI_API_KEY"] = "sk-test"
        provider = f'{{name="loopback", base_url="{url}", env_key="OPENAI_API_KEY"}}'
        repo.git("config", "worker.agent.codex.args",
                 f"-c 'model_providers.loopback={provider}' -c model_provider=loopback")
        repo.ok("spawn", "w1", "-a", "codex", "-m", "gpt-5", "-d", "probe the sandbox")
        shown = repo.wait("w1", "exited", "failed", timeout=180)
    finally:
        served.close()
    result = json.dumps(requests[-1].get("input"))  # the tool's output, sent back
    assert shown["exit_code"] == 0, log_of(repo, "w1")
    assert "COMMITTED" in result, result
    for t in GIT_DIR_TARGETS:
        assert f"denied {t}" in result, (t, result)
        written = (git / t).exists() and (git / t).read_bytes().endswith(b"x\n")
        assert not written, t  # (the registry and the hooks have moved refs on their own)
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    assert repo.git("show", "worker/w1:hello.txt") == "hello"


class ClaudeReachesForGit(AnthropicMessages):
    """Claude's script: CLAUDE_ATTEMPTS (as Bash commands), then a hook written with its
    Write tool."""

    gitdir = ""

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("Bash", {"command": c.format(git=self.gitdir), "description": "try"})
                for c, _ in CLAUDE_ATTEMPTS] + [
            ("Write", {"file_path": f"{self.gitdir}/hooks/post-commit",
                       "content": "#!/bin/sh\necho hooked\n"})]


# (command, allowed): a commit, then each way to change the repository's settings, hooks
# or other refs with git; `git diff`/`git log` are not on our allowlist (their --output
# writes any file) but Claude Code allows their read-only forms by itself.
CLAUDE_ATTEMPTS = [
    ("git commit --allow-empty -m allowed", True),
    ("git config core.hooksPath /dev/null", False),
    ("git -c core.hooksPath=/dev/null commit --allow-empty -m with-c", False),
    ("git update-ref refs/heads/main HEAD", False),
    ("git log -1 --format=format:hooked --output={git}/hooks/pre-commit", False),
    ("git diff HEAD --output={git}/config", False),
    ("git diff HEAD --outp={git}/config", False),
    ("git diff HEAD", True),
    ("git log -1", True),
]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("npm") is None, reason="the claude CLI comes from npm")
def test_real_claude_cannot_change_git_settings_hooks_or_other_refs(
        repo: GitRepo, sandbox: Sandbox) -> None:
    from test_real_agents import with_cli

    git = repo.path / ".git"
    served = serve(ClaudeReachesForGit, workdir=str(repo.workers_dir / "w1"), gitdir=str(git))
    url, requests = next(served)
    try:
        with_cli(sandbox, "claude")
        sandbox.env.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=url[:-3])
        config, main = (git / "config").read_bytes(), repo.git("rev-parse", "main")
        repo.ok("spawn", "w1", "-a", "claude", "-m", "sonnet", "-d", "reach for git")
        shown = repo.wait("w1", "exited", "failed", timeout=180)
    finally:
        served.close()
    assert shown["exit_code"] == 0, log_of(repo, "w1")
    turns = [r for r in requests if r.get("tools")]
    last = max(turns, key=lambda r: json.dumps(r).count('"tool_result"'))
    results = {block["tool_use_id"]: block for m in last["messages"]
               if isinstance(m["content"], list) for block in m["content"]
               if block.get("type") == "tool_result"}
    allowed = [not results[f"toolu_{n}"].get("is_error") for n in range(len(results))]
    assert allowed == [a for _, a in CLAUDE_ATTEMPTS] + [False], json.dumps(results, indent=1)
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "allowed"
    assert (git / "config").read_bytes() == config
    assert repo.git("rev-parse", "main") == main
    assert not (git / "hooks" / "pre-commit").exists()
    assert not (git / "hooks" / "post-commit").exists()


class GeminiReachesForGit(GeminiGenerate):
    """Gemini's script: GEMINI_ATTEMPTS, as shell commands."""

    gitdir = ""

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("run_shell_command", {"command": c.format(git=self.gitdir)})
                for c, _ in GEMINI_ATTEMPTS]


GEMINI_ATTEMPTS = [(c, a) for c, a in CLAUDE_ATTEMPTS if not c.startswith(("git diff HEAD",
                                                                          "git log -1"))]
GEMINI_ATTEMPTS += [("git diff HEAD --output={git}/config", False)]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("npm") is None, reason="the gemini CLI comes from npm")
def test_real_gemini_cannot_change_git_settings_hooks_or_other_refs(
        repo: GitRepo, sandbox: Sandbox) -> None:
    from test_real_agents import node_major, with_cli

    if node_major() < 20:
        pytest.skip("the Gemini CLI needs Node.js 20 or newer")
    git = repo.path / ".git"
    served = serve(GeminiReachesForGit, workdir=str(repo.workers_dir / "w1"), gitdir=str(git))
    url, requests = next(served)
    try:
        with_cli(sandbox, "gemini")
        sandbox.env.update(GEMINI_API_KEY="test-key", GOOGLE_GEMINI_BASE_URL=url[:-3])
        settings = sandbox.home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
        config, main = (git / "config").read_bytes(), repo.git("rev-parse", "main")
        repo.ok("spawn", "w1", "-a", "gemini", "-m", "gemini-2.5-pro", "-d", "reach for git")
        shown = repo.wait("w1", "exited", "failed", timeout=180)
    finally:
        served.close()
    assert shown["exit_code"] == 0, log_of(repo, "w1")
    turns = [r for r in requests if r.get("tools")]
    last = max(turns, key=lambda r: json.dumps(r).count('"functionResponse"'))
    responses = [part["functionResponse"]["response"] for c in last["contents"]
                 for part in c["parts"] if "functionResponse" in part]
    allowed = ["error" not in r for r in responses]
    assert allowed == [a for _, a in GEMINI_ATTEMPTS], json.dumps(responses, indent=1)
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "allowed"
    assert (git / "config").read_bytes() == config
    assert repo.git("rev-parse", "main") == main
    assert not (git / "hooks" / "pre-commit").exists()


def test_codex_is_never_given_every_branch(repo: GitRepo, sandbox: Sandbox) -> None:
    """With a branch prefix that is no directory, the directory codex would need to write
    is refs/heads itself: refused, with the way out, and nothing created."""
    sandbox.script("codex", "exit 0")
    repo.git("config", "worker.branchPrefix", "wk-")
    repo.git("config", "worker.launcher", "detached")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-a", "codex")
    assert r.code == 1, r
    assert "codex's sandbox would have to let it write every branch" in r.err
    assert "git config worker.branchPrefix worker/" in r.err
    assert repo.snapshot() == before


def test_git_worker_never_runs_git_through_a_worktrees_forged_git_dir(
        repo: GitRepo, sandbox: Sandbox) -> None:
    """A worktree whose `.git` the agent replaced by a repository with core.fsmonitor set:
    git run there would run that command as the user. Merging into its branch (which
    updates that worktree) and removing it check the worktree without ever doing so."""
    canary = sandbox.root / "fsmonitor-ran"
    hook = sandbox.script("agents-fsmonitor", f"touch {canary}")
    repo.ok("spawn", "w1", "--no-launch")
    repo.work("w2", "b.txt")
    wt1 = repo.workers_dir / "w1"
    (wt1 / ".git").unlink()
    repo.git("init", "-q", str(wt1))
    repo.git("config", "core.fsmonitor", str(hook), cwd=wt1)
    repo.worker("merge", "w2", "--into", "worker/w1")
    repo.worker("rm", "w1")
    repo.worker("rm", "-f", "w1")
    assert not canary.exists()
