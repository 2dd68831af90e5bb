"""Tab completion: argcomplete's protocol, the fast path against argcomplete itself, and
the shipped scripts in real bash (with git's completion), zsh and fish."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CHECKOUT, GitRepo, Sandbox

sys.path.insert(0, str(CHECKOUT / "lib"))

from git_worker import cli, completion  # noqa: E402

SHELL_DIR = CHECKOUT / "lib" / "git_worker" / "shell"
GIT_BASH_COMPLETION = Path("/usr/share/bash-completion/completions/git")
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
IDS = ["a1", "w-one", "w-two"]

PROTOCOL = {  # what each shipped script sets, per shell
    "bash": {"_ARGCOMPLETE_SHELL": "bash", "_ARGCOMPLETE_SUPPRESS_SPACE": "1"},
    "bash-space": {"_ARGCOMPLETE_SHELL": "bash", "_ARGCOMPLETE_SUPPRESS_SPACE": "0"},
    "zsh": {"_ARGCOMPLETE_SHELL": "zsh", "_ARGCOMPLETE_SUPPRESS_SPACE": "1"},
    "fish": {"_ARGCOMPLETE_SHELL": "fish", "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
             "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_DFS": "\t"},
}


@pytest.fixture
def workers(repo: GitRepo) -> GitRepo:
    repo.ok("spawn", *IDS, "--no-launch")
    return repo


def request(line: str, shell: str = "bash", start: int = 1) -> dict[str, str]:
    return {"_ARGCOMPLETE": str(start), "COMP_LINE": line, "COMP_POINT": str(len(line)),
            **PROTOCOL[shell]}


def ask(repo: GitRepo, line: str, shell: str = "bash", cwd: Path | None = None,
        env: dict[str, str] | None = None) -> list[str]:
    """Run git-worker as a completion script does; the candidates it answers."""
    out = repo.sandbox.root / "completions.out"
    out.unlink(missing_ok=True)
    r = repo.sandbox.run("git-worker", cwd=cwd or repo.path, env={
        **request(line, shell), "_ARGCOMPLETE_STDOUT_FILENAME": str(out), **(env or {})})
    assert r.code == 0, r.err
    text = out.read_text()
    ifs = PROTOCOL[shell].get("_ARGCOMPLETE_IFS", "\013")
    return text.split(ifs) if text else []


# --- the protocol, whole process -------------------------------------------------------


def test_worker_ids_complete_from_the_registry(workers: GitRepo) -> None:
    assert ask(workers, "git-worker rm w-") == ["w-one", "w-two"]
    assert ask(workers, "git-worker rm ") == IDS
    assert ask(workers, "git-worker remove a1 w-t") == ["w-two"]
    assert ask(workers, "git-worker show a") == ["a1"]
    assert ask(workers, "git-worker show a1 ") == []  # show takes one id


def test_removed_worker_is_no_longer_offered(workers: GitRepo) -> None:
    workers.ok("rm", "w-one")
    assert ask(workers, "git-worker rm w-") == ["w-two"]


def test_packed_refs_are_read_too(workers: GitRepo) -> None:
    workers.git("pack-refs", "--all")
    assert not (workers.path / ".git" / "refs" / "workers" / "a1").exists()
    assert ask(workers, "git-worker rm ") == IDS


def test_ids_complete_from_a_linked_worktree_and_a_subdirectory(workers: GitRepo) -> None:
    (workers.path / "sub" / "dir").mkdir(parents=True)
    assert ask(workers, "git-worker rm w-", cwd=workers.path / "sub" / "dir") == ["w-one", "w-two"]
    assert ask(workers, "git-worker rm w-", cwd=workers.workers_dir / "a1") == ["w-one", "w-two"]


def test_outside_a_repository_nothing_is_offered(sandbox: Sandbox, repo: GitRepo) -> None:
    assert ask(repo, "git-worker rm w-", cwd=sandbox.root) == []


def test_subcommands_and_options(workers: GitRepo) -> None:
    assert ask(workers, "git-worker sp") == ["spawn"]
    assert ask(workers, "git-worker rm --k") == ["--keep-branch"]
    # options only once '-' is typed; the compatibility aliases are never offered
    assert "--force" not in ask(workers, "git-worker rm ")
    spawn_options = ask(workers, "git-worker spawn --")
    assert "--no-fetch" in spawn_options and "--from" in spawn_options
    assert "--noFetch" not in spawn_options and "--fromBranch" not in spawn_options
    assert ask(workers, "git-worker completion ") == ["bash", "zsh", "fish"]


def test_the_daily_loop_commands_and_options(workers: GitRepo) -> None:
    assert ask(workers, "git-worker la") == ["land"]
    assert ask(workers, "git-worker sy") == ["sync"]
    assert ask(workers, "git-worker pr") == ["prompt", "prune"]
    assert ask(workers, "git-worker land --b") == ["--batch"]
    assert ask(workers, "git-worker land w-") == ["w-one", "w-two"]
    assert ask(workers, "git-worker sync a1 w-o") == ["w-one"]
    assert ask(workers, "git-worker sync --r") == ["--rebase"]
    assert ask(workers, "git-worker diff a") == ["a1"]
    assert ask(workers, "git-worker prune --o") == ["--older-than"]
    assert ask(workers, "git-worker rm --m") == ["--merged"]
    assert ask(workers, "git-worker list --s") == ["--size"]


def test_agents_builtin_and_custom_with_descriptions(workers: GitRepo) -> None:
    workers.git("config", "worker.agent.mine.command", "my-agent --yes")
    assert ask(workers, "git-worker spawn -a ") == ["aider", "claude", "codex", "gemini", "mine"]
    assert "mine\tmy-agent --yes" in ask(workers, "git-worker spawn --agent m", "fish")


def test_branches_for_from(workers: GitRepo) -> None:
    workers.git("branch", "release-1")
    assert ask(workers, "git-worker spawn -f rel") == ["release-1"]
    assert "worker/a1" in ask(workers, "git-worker spawn --from ")


def test_ready_bd_issues_for_spawn_with_titles(workers: GitRepo) -> None:
    workers.sandbox.script("bd", """
        case "$*" in
          *ready*) echo '[{"id": "talu-gsga", "title": "Fix the parser", "status": "open",
                          "priority": 1, "issue_type": "bug"},
                         {"id": "talu-jid5", "title": "Add tests", "status": "open",
                          "priority": 2, "issue_type": "task"}]' ;;
          *) echo '[]' ;;
        esac
    """)
    assert ask(workers, "git-worker spawn talu-") == ["talu-gsga", "talu-jid5"]
    assert ask(workers, "git-worker spawn -t talu-g") == ["talu-gsga"]
    assert ask(workers, "git-worker spawn talu-", "fish") == [
        "talu-gsga\tFix the parser", "talu-jid5\tAdd tests"]
    assert ask(workers, "git-worker spawn talu-g", "zsh") == ["talu-gsga:Fix the parser"]


def test_spawn_without_a_tracker_offers_nothing(workers: GitRepo) -> None:
    assert ask(workers, "git-worker spawn talu-") == []


# --- the fast path is argcomplete's answer, sooner -------------------------------------


def reference(line: str, shell: str, start: int = 1) -> str:
    """argcomplete's own answer on the real parser, in this process."""
    import argcomplete

    out = io.StringIO()

    class Done(Exception):
        pass

    class Finder(argcomplete.CompletionFinder):
        def _init_debug_stream(self) -> None:
            # argcomplete's default opens fd 9, which in this process belongs to pytest.
            argcomplete.io.debug_stream = io.StringIO()

    def stop(code: int = 0) -> None:
        raise Done

    with pytest.MonkeyPatch.context() as mp:
        for key, value in request(line, shell, start).items():
            mp.setenv(key, value)
        for key in ("_ARGCOMPLETE_IFS", "_ARGCOMPLETE_DFS"):
            if key not in PROTOCOL[shell]:
                mp.delenv(key, raising=False)
        with contextlib.suppress(Done):
            completion.with_argcomplete(cli.build_parser(), Finder(), output_stream=out,
                                        exit_method=stop)
    return out.getvalue()


@pytest.fixture
def inside(workers: GitRepo, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    monkeypatch.chdir(workers.path)
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    return workers


def test_fast_path_answers_and_agrees_with_argcomplete(inside: GitRepo) -> None:
    for shell in PROTOCOL:
        for line in ["git-worker rm ", "git-worker rm w-", "git-worker rm w-o",
                     "git-worker remove a1 ", "git-worker show ", "git-worker show w-t",
                     "git-worker rm zz"]:
            fast = completion.fast_answer(request(line, shell))
            assert fast is not None, f"{line!r} must take the fast path"
            assert fast == reference(line, shell), (line, shell)


def test_fast_path_through_git_counts_words_from_worker(inside: GitRepo) -> None:
    line = "git -C . worker rm w-"
    fast = completion.fast_answer(request(line, "bash", start=4))
    assert fast == reference(line, "bash", start=4) == "w-one\013w-two"


_TOKENS = ["a1", "w-one", "w", "-f", "--force", "--keep-branch", "--json", "--", "x=y", "'w",
           "w:1", '"a', "spawn", "rm", "a@b", "w,1"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["rm", "remove", "show", "list", "spawn", "fsck", "r", "", "-h",
                                "diff", "sync", "land"]),
       middle=st.lists(st.sampled_from(_TOKENS), max_size=3),
       current=st.sampled_from(["", "w", "w-", "w-t", "a", "zz", "-", "--k", "'w", "w\\", "a=b",
                                "w@", "a1@w"]),
       shell=st.sampled_from(sorted(PROTOCOL)))
def test_fast_path_never_disagrees_with_argcomplete(inside: GitRepo, command: str,
                                                     middle: list[str], current: str,
                                                     shell: str) -> None:
    line = " ".join(["git-worker", command, *middle, current])
    fast = completion.fast_answer(request(line, shell))
    if fast is not None:
        assert fast == reference(line, shell), line


def test_fast_table_matches_the_parser() -> None:
    import argparse

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    table: dict[str, int | str] = {}
    for name, subparser in sub.choices.items():
        # A trailing REMAINDER (diff's git options) is not an id: argcomplete answers it.
        positionals = [a for a in subparser._actions
                       if not a.option_strings and a.nargs != argparse.REMAINDER]
        takes_ids = [a for a in positionals
                     if getattr(a, "completer", None) is completion.worker_ids]
        if takes_ids:
            assert takes_ids == positionals, f"{name}: the fast path assumes only ids"
            nargs = takes_ids[0].nargs
            table[name] = 1 if nargs is None else str(nargs)
        elif name != "spawn":
            # a new command's ID positional without the worker-id completer is a mistake
            assert not [a for a in positionals if a.metavar == "ID"], name
    assert table == completion.WORKER_ID_POSITIONALS


# --- the scripts, in the real shells ---------------------------------------------------


def test_completion_command_prints_the_shipped_scripts(repo: GitRepo) -> None:
    for shell, name in (("bash", "git-worker.bash"), ("zsh", "_git-worker"),
                        ("fish", "git-worker.fish")):
        assert repo.ok("completion", shell).out == (SHELL_DIR / name).read_text()
    r = repo.worker("completion", "tcsh")
    assert r.code == 2 and "invalid choice: 'tcsh'" in r.err


BASH_DRIVER = r"""
line="$1"
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$line"
COMP_POINT=${#line}
spec=$(complete -p "${COMP_WORDS[0]}") || exit 9
fn=${spec##*-F }
fn=${fn%% *}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def bash_complete(sandbox: Sandbox, line: str, cwd: Path, setup: str) -> list[str]:
    driver = sandbox.root / "drive.bash"
    driver.write_text(setup + BASH_DRIVER)
    r = sandbox.run("bash", driver, line, cwd=cwd)
    assert r.code == 0, r.err
    # Outside an interactive completion compopt is refused, so the script lets argcomplete
    # add the space after a single match itself.
    return [c.rstrip(" ") for c in r.out.splitlines() if c]


@pytest.fixture
def bash_with_git() -> str:
    if not GIT_BASH_COMPLETION.exists():
        pytest.skip("git's bash completion is not installed (.ci/run installs it)")
    return f"source {GIT_BASH_COMPLETION}\nsource {SHELL_DIR / 'git-worker.bash'}\n"


def test_bash_git_worker_rm_offers_live_ids(workers: GitRepo, bash_with_git: str) -> None:
    sandbox = workers.sandbox
    assert bash_complete(sandbox, "git worker rm w-", workers.path, bash_with_git) == \
        ["w-one", "w-two"]
    assert bash_complete(sandbox, "git worker show ", workers.path, bash_with_git) == IDS
    assert bash_complete(sandbox, "git worker sp", workers.path, bash_with_git) == ["spawn"]
    assert bash_complete(sandbox, "git-worker rm a", workers.path, bash_with_git) == ["a1"]
    # git's -C: the ids of the repository it names
    assert bash_complete(sandbox, "git -C repo worker rm w-", sandbox.root, bash_with_git) == \
        ["w-one", "w-two"]


def test_bash_completion_loads_the_installed_script_on_demand(workers: GitRepo) -> None:
    if not BASH_COMPLETION.exists():
        pytest.skip("bash-completion is not installed (.ci/run installs it)")
    prefix = workers.sandbox.root / "prefix"
    r = workers.sandbox.run("make", "-s", "-C", CHECKOUT, "install-files", f"PREFIX={prefix}")
    assert r.code == 0, r.err
    setup = (f"export BASH_COMPLETION_USER_DIR={prefix}/share/bash-completion\n"
             f"source {BASH_COMPLETION}\n__load_completion git\n")
    assert bash_complete(workers.sandbox, "git worker rm w-", workers.path, setup) == \
        ["w-one", "w-two"]


def test_fish_completes_git_worker_and_git_dash_worker(workers: GitRepo) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (.ci/run installs it)")
    script = SHELL_DIR / "git-worker.fish"

    def fish(line: str) -> list[str]:
        r = workers.sandbox.run("fish", "--no-config", "-c",
                                f"source {script}; complete -C '{line}'", cwd=workers.path)
        assert r.code == 0, r.err
        return r.out.splitlines()

    assert fish("git worker rm w-") == ["w-one", "w-two"]
    assert fish("git-worker rm a") == ["a1"]
    assert "spawn\tstart workers for tasks" in fish("git worker sp")
    assert "worker\tRun coding agents in parallel, one per task" in fish("git wor")
    assert fish("git -C . worker show w-t") == ["w-two"]
    assert not [c for c in fish("git log ") if c.startswith("w-one")]


def test_fish_loads_the_installed_script_at_start_up(workers: GitRepo) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (.ci/run installs it)")
    sandbox = workers.sandbox
    r = sandbox.run("make", "-s", "-C", CHECKOUT, "install-files",
                    f"PREFIX={sandbox.home / '.local'}")
    assert r.code == 0, r.err
    r = sandbox.run("fish", "-c", "complete -C 'git worker rm w-'", cwd=workers.path)
    assert r.out.splitlines() == ["w-one", "w-two"], r.err


ZSHRC = """
fpath=({fpath} $fpath)
autoload -Uz compinit && compinit -u -d {dump}
# Record each candidate the completion system adds, then add it as usual.
compadd() {{
  local -a __found
  builtin compadd -O __found "$@"
  (( ${{#__found}} )) && print -rl -- "${{__found[@]}}" >> {capture}
  builtin compadd "$@"
}}
PS1='> '
"""


def zsh_complete(sandbox: Sandbox, line: str, cwd: Path) -> list[str]:
    """Type ``line`` and TAB into an interactive zsh; the candidates its completion added."""
    zdot = sandbox.root / "zdot"
    zdot.mkdir(exist_ok=True)
    capture = sandbox.root / "zsh-candidates"
    capture.unlink(missing_ok=True)
    (zdot / ".zshrc").write_text(ZSHRC.format(fpath=SHELL_DIR, dump=zdot / ".zcompdump",
                                              capture=capture))
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh in the sandbox's environment
        os.chdir(cwd)
        os.execvpe("zsh", ["zsh", "-i"], {**sandbox.env, "ZDOTDIR": str(zdot), "TERM": "dumb"})
    try:
        _read_until(fd, b"> ", 10)
        os.write(fd, line.encode() + b"\t")
        deadline = time.monotonic() + 15
        while not capture.exists() and time.monotonic() < deadline:
            _read_until(fd, b"", 0.2)
        _read_until(fd, b"", 0.5)  # let it finish adding
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return list(dict.fromkeys(capture.read_text().split())) if capture.exists() else []


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data += os.read(fd, 4096)
            except OSError:
                break
            if marker and marker in data:
                break
    return data


def test_zsh_completes_git_worker_and_git_dash_worker(workers: GitRepo) -> None:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (.ci/run installs it)")
    assert zsh_complete(workers.sandbox, "git worker rm w-", workers.path) == ["w-one", "w-two"]
    assert zsh_complete(workers.sandbox, "git-worker sho", workers.path) == ["show"]
    assert zsh_complete(workers.sandbox, "git -C repo worker show a", workers.sandbox.root) == \
        ["a1"]


def test_completion_script_runs_git_worker_from_path(workers: GitRepo) -> None:
    # The scripts call `git-worker` by name: a stale one elsewhere would answer instead.
    for name in ("git-worker.bash", "_git-worker", "git-worker.fish"):
        text = (SHELL_DIR / name).read_text()
        assert "git-worker 8>&1 9>&2" in text, name
    assert subprocess.run(["bash", "-n", str(SHELL_DIR / "git-worker.bash")]).returncode == 0
