"""Installing like a real package: what the wheel and the sdist hold, git-worker run from a
wheel installed in a virtualenv of its own (not this checkout), `make install` outliving
its checkout, `make uninstall`, and the repair each kind of installation is told.

Nothing here touches the environment that runs the suite: the wheel is built from a copy
of the checkout and installed into a fresh virtualenv (one per test session), `make
install` goes to a temporary prefix, and every `git worker` below runs with a PATH and an
environment that cannot reach this checkout's lib/.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, wait_for
from git_worker import installation

PACKAGE = CHECKOUT / "lib" / "git_worker"
# Building the wheel and a virtualenv (once a session), and make install (twice), take
# tens of seconds on a loaded machine: more than the suite's 120 s would allow them there.
pytestmark = pytest.mark.timeout(900)
needs_man = pytest.mark.skipif(shutil.which("man") is None,
                               reason="man is not installed (.ci/run installs man-db)")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
    return {**env, **extra}


def _run(argv: list[str | Path], cwd: Path) -> str:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=_clean_env(), text=True,
                          capture_output=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def checkout_files() -> list[str]:
    """The checkout as it is now: tracked and new files, not the ignored ones."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=CHECKOUT, capture_output=True, check=True, env=_clean_env()).stdout
    return sorted({name for name in out.decode().split("\0")
                   if name and os.path.lexists(CHECKOUT / name)})


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout's files (uncommitted edits included), symlinks kept."""
    for name in checkout_files():
        src, dst = CHECKOUT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return dest


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """A wheel (what `pip install .` builds) and an sdist, built from a copy of the checkout."""
    source = copy_checkout(tmp_path_factory.mktemp("source") / "git-worker")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source], cwd=out)
    _run([sys.executable, "-c", "import sys, setuptools.build_meta as b; "
          "b.build_sdist(sys.argv[1])", out], cwd=source)
    return Dists(next(out.glob("git_worker-*.whl")), next(out.glob("git-worker-*.tar.gz")))


@pytest.fixture(scope="session")
def venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed (dulwich and argcomplete from the index)."""
    root = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", root], cwd=root.parent)
    _run([root / "bin" / "python", "-m", "pip", "install", "-q", dists.wheel], cwd=root.parent)
    return root


def isolate(sandbox: Sandbox, bin_dir: Path) -> None:
    """`git worker` in the sandbox is the one in bin_dir: the checkout's is neither on PATH
    nor (PYTHONPATH) on sys.path."""
    (sandbox.bin / "git-worker").unlink()
    for name in [k for k in sandbox.env if k.startswith(("PYTHON", "VIRTUAL_ENV"))]:
        del sandbox.env[name]
    sandbox.env["PATH"] = os.pathsep.join([str(bin_dir), str(sandbox.bin), "/usr/bin", "/bin"])


@pytest.fixture
def installed(sandbox: Sandbox, venv: Path) -> Path:
    """The sandbox runs the wheel's git-worker. Returns the installed package directory."""
    isolate(sandbox, venv / "bin")
    r = sandbox.run(venv / "bin" / "python", "-c",
                    "import git_worker, os; print(os.path.dirname(git_worker.__file__))")
    package = Path(r.out.strip())
    assert package.is_relative_to(venv), package
    return package


# --- what the distributions hold ----------------------------------------------------------


def test_shipped_names_every_file_the_package_holds_besides_its_modules() -> None:
    in_package = {name.removeprefix("lib/git_worker/") for name in checkout_files()
                  if name.startswith("lib/git_worker/") and not name.endswith(".py")}
    # py.typed is for type checkers, never read at run time.
    assert in_package == {s.path for s in installation.SHIPPED} | {"py.typed"}
    assert [s.path for s in installation.SHIPPED if installation.problem(s)] == []


def test_the_modules_read_the_files_shipped_names() -> None:
    from git_worker import hooks, manual, prompt
    from git_worker.commands import completion

    assert Path(manual.PAGE).resolve() == Path(installation.location(installation.MAN_PAGE))
    for shell, shipped in (("bash", installation.BASH_COMPLETION),
                           ("zsh", installation.ZSH_COMPLETION),
                           ("fish", installation.FISH_COMPLETION)):
        assert Path(completion.path(shell)).resolve() == Path(installation.location(shipped))
    assert hooks.shipped() == ["reference-transaction"]
    assert (Path(hooks.SHIPPED_GIT_HOOKS_DIR) / "reference-transaction" ==
            Path(installation.location(installation.REFERENCE_TRANSACTION_HOOK)))
    template = Path(installation.location(installation.PROMPT_TEMPLATE)).read_text()
    assert prompt.builtin().text == template
    # The top-level hooks/ the design card names is the package's own directory.
    assert (CHECKOUT / "hooks").resolve() == PACKAGE / "hooks"


def test_the_wheel_and_the_sdist_hold_every_file_with_its_mode(dists: Dists) -> None:
    package_files = {name.removeprefix("lib/") for name in checkout_files()
                     if name.startswith("lib/git_worker/")}
    with zipfile.ZipFile(dists.wheel) as wheel:
        modes = {i.filename: i.external_attr >> 16 for i in wheel.infolist()
                 if i.filename.startswith("git_worker/")}
    assert set(modes) == package_files
    with tarfile.open(dists.sdist) as sdist:
        members = {m.name.split("/", 1)[1]: m.mode for m in sdist.getmembers() if m.isfile()}
    assert {f"lib/{name}" for name in package_files} <= set(members)
    for shipped in installation.SHIPPED:
        name = f"git_worker/{shipped.path}"
        assert bool(modes[name] & stat.S_IXUSR) == shipped.executable, name
        assert bool(members[f"lib/{name}"] & stat.S_IXUSR) == shipped.executable, name


# --- run from a wheel, in a virtualenv of its own -------------------------------------------


def test_version_says_what_runs_and_from_where(sandbox: Sandbox, installed: Path,
                                               venv: Path, dists: Dists) -> None:
    r = sandbox.run("git", "worker", "--version")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "git-worker 0.1.0",
        f"installed:   {installed} (pip, in {venv})",
        f"python:      {sys.version.split()[0]} ({venv / 'bin' / 'python'})",
        "dulwich:     1.2.21",
        f"argcomplete: {_version(venv, 'argcomplete')}",
    ]
    assert sandbox.run("git", "worker", "version").out == r.out
    assert installed == venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
        / "site-packages" / "git_worker"
    r = sandbox.run("git", "worker", "doctor", "--json")
    first = json.loads(r.out)[0]
    assert first == {"check": "git-worker", "status": "ok", "fix": None,
                     "detail": f"0.1.0 (pip: {venv}); all 8 shipped files in place"}


def _version(venv: Path, distribution: str) -> str:
    return _run([venv / "bin" / "python", "-c", "import sys; from importlib import metadata; "
                 "print(metadata.version(sys.argv[1]))", distribution], cwd=venv).strip()


def recorder(sandbox: Sandbox, name: str, then: str) -> Path:
    """A stand-in `name` on PATH: records its argv (one per line), then runs ``then``."""
    seen = sandbox.root / f"{name}.argv"
    sandbox.script(name, f"""
        printf '%s\\n' "$@" > {seen}
        cat > /dev/null
        {then}
    """)
    return seen


def assert_runnable(path: str, package: Path) -> None:
    assert Path(path).is_relative_to(package), path  # the installed copy, not the checkout
    assert os.path.isfile(path) and os.access(path, os.X_OK), path


def test_spawn_claude_and_codex_from_a_wheel_install(sandbox: Sandbox, repo: GitRepo,
                                                    installed: Path) -> None:
    # claude: every hook command in the --settings file it is given, run as Claude Code
    # runs them (through sh, the event's JSON on stdin). codex: its notify program, run with
    # the JSON of a finished turn. The hooks report to the registry with the installed code.
    claude = recorder(sandbox, "claude", """
        settings=""; prev=""
        for a in "$@"; do [ "$prev" = --settings ] && settings=$a; prev=$a; done
        python3 -c '
import json, subprocess, sys
for event, groups in json.load(open(sys.argv[1]))["hooks"].items():
    for group in groups:
        for hook in group["hooks"]:
            subprocess.run(["sh", "-c", hook["command"]], input=b"{}", check=True)
' "$settings"
    """)
    codex = recorder(sandbox, "codex", """
        notify=$(printf '%s\\n' "$@" | sed -n 's/^notify=//p')
        program=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[0])' "$notify")
        "$program" '{"type": "agent-turn-complete", "last-assistant-message": "codex done"}'
    """)
    repo.ok("spawn", "c1", "-a", "claude", "-d", "task")
    repo.ok("spawn", "x1", "-a", "codex", "-d", "task")
    for worker_id in ("c1", "x1"):
        repo.wait(worker_id, "exited")
    argv = claude.read_text().splitlines()
    settings = json.loads(Path(argv[argv.index("--settings") + 1]).read_text())
    commands = [hook["command"] for groups in settings["hooks"].values()
                for group in groups for hook in group["hooks"]]
    assert len(commands) == 5
    for command in commands:
        assert_runnable(shlex.split(command)[0], installed)
    argv = codex.read_text().splitlines()
    notify = next(a for a in argv if a.startswith("notify="))
    [program] = json.loads(notify.removeprefix("notify="))
    assert_runnable(program, installed)
    # What the hooks reported reached the registry (the installed code ran them).
    wait_for(lambda: "agent: done" in repo.ok("show", "c1", "--history").out)
    wait_for(lambda: "agent: done: codex done" in repo.ok("show", "x1", "--history").out)


def test_pip_install_user(sandbox: Sandbox, repo: GitRepo, dists: Dists) -> None:
    # --user installs into the user base: a temporary one here (PYTHONUSERBASE), with the
    # interpreter the suite's virtualenv was made from (pip refuses --user in a venv).
    python = getattr(sys, "_base_executable", sys.executable)
    stdlib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                  cwd=sandbox.root).strip()
    if (Path(stdlib) / "EXTERNALLY-MANAGED").exists():
        pytest.skip(f"{python} is externally managed (PEP 668): pip refuses --user there")
    userbase = sandbox.root / "userbase"
    isolate(sandbox, userbase / "bin")
    sandbox.env["PYTHONUSERBASE"] = str(userbase)
    r = sandbox.run(python, "-m", "pip", "install", "-q", "--user", dists.wheel, timeout=300)
    assert r.code == 0, r.err
    assert (userbase / "share" / "man" / "man1" / "git-worker.1").is_file()
    assert (userbase / "share" / "bash-completion" / "completions" / "git-worker.bash").is_file()
    site_packages = Path(sandbox.run(python, "-m", "site", "--user-site").out.strip())
    r = repo.ok("version")
    assert f"installed:   {site_packages / 'git_worker'} (pip, in {userbase})" in r.out
    repo.ok("spawn", "w1", "--no-launch")
    assert json.loads(repo.ok("list", "--json").out)[0]["id"] == "w1"
    # What a user is told to run when a file is missing puts it back in the user base.
    (site_packages / "git_worker" / "hooks" / "codex" / "notify").unlink()
    r = repo.worker("spawn", "x1", "-a", "codex", "-d", "task")
    repair = shlex.join([python, "-m", "pip", "install", "--force-reinstall", "--no-deps",
                         "--user", str(dists.wheel)])
    assert r.err.endswith(f"\nhint: reinstall: {repair}\n")
    assert sandbox.run(*shlex.split(repair), timeout=300).code == 0
    assert json.loads(repo.worker("doctor", "--json").out)[0]["status"] == "ok"


@needs_man
def test_git_worker_help_opens_the_page_after_a_plain_pip_install(sandbox: Sandbox,
                                                                  repo: GitRepo,
                                                                  installed: Path,
                                                                  venv: Path) -> None:
    page = venv / "share" / "man" / "man1" / "git-worker.1"
    assert page.read_text() == (PACKAGE / "man" / "git-worker.1").read_text()
    env = {"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80"}
    # git turns `git worker --help` into `man git-worker`; man finds the page from PATH.
    r = sandbox.run("git", "worker", "--help", cwd=repo.path, env=env)
    assert r.code == 0, r.err
    assert r.out.startswith("GIT-WORKER(1)")
    assert "git worker spawn [ID...]" in r.out
    # git-worker --help, run directly, opens the same page.
    assert sandbox.run("git-worker", "--help", cwd=repo.path, env=env).out == r.out


def test_completion_from_a_wheel_install(sandbox: Sandbox, repo: GitRepo,
                                         installed: Path) -> None:
    for shell, name in (("bash", "git-worker.bash"), ("zsh", "_git-worker"),
                        ("fish", "git-worker.fish")):
        r = sandbox.run("git", "worker", "completion", shell)
        assert r.code == 0, r.err
        assert r.out == (PACKAGE / "shell" / name).read_text()
        assert r.out == (installed / "shell" / name).read_text()
    # And a completion request answered by the installed argcomplete.
    out = sandbox.root / "candidates"
    line = "git-worker sp"
    r = sandbox.run("git-worker", cwd=repo.path, env={
        "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": line,
        "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})
    assert r.code == 0, r.err
    assert out.read_text().split("\013") == ["spawn "]


@pytest.fixture
def damaged(installed: Path) -> Iterator[Path]:
    """The installed codex hook moved away (put back afterwards, if the test did not)."""
    hook = installed / "hooks" / "codex" / "notify"
    aside = hook.with_name("notify.aside")
    hook.rename(aside)
    try:
        yield hook
    finally:
        if aside.exists():
            aside.replace(hook)


def test_a_missing_hook_is_named_with_the_repair_that_works(sandbox: Sandbox, repo: GitRepo,
                                                            damaged: Path, venv: Path,
                                                            dists: Dists) -> None:
    repair = shlex.join([str(venv / "bin" / "python"), "-m", "pip", "install",
                         "--force-reinstall", "--no-deps", str(dists.wheel)])
    before = repo.snapshot()
    for argv in (["spawn", "x1", "-a", "codex", "-d", "task", "--dry-run"],
                 ["spawn", "x1", "-a", "codex", "-d", "task"]):
        r = repo.worker(*argv)
        assert r.code == 1, r.out
        assert r.err == (f"error: git-worker's hooks/codex/notify (Codex's notify program) is "
                         f"missing in this installation: {damaged}\nhint: reinstall: {repair}\n")
        assert repo.snapshot() == before  # refused before anything was created
    r = repo.worker("doctor", "--json")
    assert r.code == 1
    assert json.loads(r.out)[0] == {
        "check": "git-worker", "status": "fail", "fix": f"reinstall: {repair}",
        "detail": f"hooks/codex/notify is missing: {damaged} (Codex's notify program)"}
    # The hint, run as it is, repairs the installation.
    r = sandbox.run(*shlex.split(repair), timeout=300)
    assert r.code == 0, r.err
    assert os.access(damaged, os.X_OK)
    assert json.loads(repo.worker("doctor", "--json").out)[0]["status"] == "ok"


# For each shipped file, a command that needs it.
NEEDED_BY = {
    "hooks/claude-code/event": ["spawn", "w1", "-a", "claude", "-d", "task"],
    "hooks/codex/notify": ["spawn", "w1", "-a", "codex", "-d", "task"],
    "hooks/reference-transaction": ["hooks", "install"],
    "man/git-worker.1": ["--help"],
    "shell/git-worker.bash": ["completion", "bash"],
    "shell/_git-worker": ["completion", "zsh"],
    "shell/git-worker.fish": ["completion", "fish"],
    "templates/prompt.md": ["spawn", "w1", "--no-launch", "-d", "task"],
}


def test_every_shipped_file_has_a_command_that_needs_it() -> None:
    assert sorted(NEEDED_BY) == sorted(s.path for s in installation.SHIPPED)


@pytest.mark.parametrize("shipped", installation.SHIPPED, ids=lambda s: s.path)
def test_a_missing_shipped_file_is_named_not_a_crash(sandbox: Sandbox, repo: GitRepo,
                                                    installed: Path,
                                                    shipped: installation.Shipped) -> None:
    if shipped is installation.MAN_PAGE and shutil.which("man") is None:
        pytest.skip("without man, --help prints the short help and needs no page")
    path = installed / shipped.path
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        before = repo.snapshot()
        # git-worker --help, run directly: the packaged page is opened by path when man
        # cannot find one by name (MANPATH leads nowhere).
        r = sandbox.run("git-worker", *NEEDED_BY[shipped.path], cwd=repo.path,
                        env={"MANPATH": "/nonexistent"})
        assert r.code == 1, (r.out, r.err)
        assert r.err.startswith(f"error: git-worker's {shipped.path} ({shipped.purpose}) is "
                                f"missing in this installation: {path}\nhint: reinstall: ")
        assert repo.snapshot() == before
    finally:
        aside.replace(path)


def test_a_hook_that_lost_its_mode_is_named(sandbox: Sandbox, repo: GitRepo,
                                            installed: Path) -> None:
    hook = installed / "hooks" / "claude-code" / "event"
    hook.chmod(0o644)
    try:
        r = repo.worker("spawn", "c1", "-a", "claude", "-d", "task")
        assert r.code == 1
        assert f"hooks/claude-code/event (Claude Code's hooks) is not executable in this " \
               f"installation: {hook}\nhint: reinstall: " in r.err
        r = repo.worker("doctor")
        assert "fail  git-worker" in r.out and "hooks/claude-code/event is not executable" in r.out
    finally:
        hook.chmod(0o755)


def test_a_pipx_install_is_told_pipx_reinstall(sandbox: Sandbox, repo: GitRepo,
                                               damaged: Path, venv: Path) -> None:
    # pipx marks each of its virtualenvs with this file (pipx itself is not on this machine).
    marker = venv / installation.PIPX_METADATA
    marker.write_text("{}")
    try:
        assert f"(pipx, in {venv})" in repo.ok("version").out
        r = repo.worker("spawn", "x1", "-a", "codex", "-d", "task")
        assert r.code == 1
        assert r.err.endswith(f"\nhint: reinstall: pipx reinstall {venv.name}\n")
    finally:
        marker.unlink()


def test_a_checkout_is_told_to_restore_the_file(sandbox: Sandbox, repo: GitRepo) -> None:
    source = copy_checkout(sandbox.root / "src")
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        assert sandbox.run("git", *argv, cwd=source).code == 0
    sandbox.script("git-worker", f'exec {sys.executable} {source / "git-worker"} "$@"')
    event = source / "lib" / "git_worker" / "hooks" / "claude-code" / "event"
    repair = f"git -C {source} checkout -- lib/git_worker/hooks/claude-code/event"
    for damage, what in ((Path.unlink, "missing"), (lambda p: p.chmod(0o644), "not executable")):
        damage(event)
        r = repo.worker("spawn", "c1", "-a", "claude", "-d", "task")
        assert r.code == 1
        assert f"hooks/claude-code/event (Claude Code's hooks) is {what} in this " in r.err
        assert r.err.endswith(f"\nhint: restore it: {repair}\n")
        assert sandbox.run(*shlex.split(repair)).code == 0  # the hint, as it is, repairs it
        assert json.loads(repo.worker("doctor", "--json").out)[0]["status"] == "ok"


# --- make install / make uninstall ---------------------------------------------------------


def listing(root: Path) -> list[tuple[str, str]]:
    """Every path under root, with what it is (a symlink: where it points)."""
    found = []
    for path in sorted(root.rglob("*")):
        kind = f"-> {os.readlink(path)}" if path.is_symlink() else (
            "dir" if path.is_dir() else f"file {stat.filemode(path.stat().st_mode)}")
        found.append((str(path.relative_to(root)), kind))
    return found


# Python names every module it imports, as it imports it, on stderr.
IMPORT_TIMES = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def assert_runs_without_site(sandbox: Sandbox, repo: GitRepo) -> None:
    """The `git-worker` on the sandbox's PATH, a lean launcher, runs Python without site (-S:
    ~2.7 ms off every command) and finds what site would have given it: dulwich (doctor
    imports it) and argcomplete (a subcommand is completed on the real parser)."""
    r = repo.worker("doctor", "--json", env=IMPORT_TIMES)
    modules = imported(r.err)
    assert "git_worker.cli" in modules, r.err  # the import times were recorded
    assert "site" not in modules and "dulwich" in modules
    checks = {c["check"]: c for c in json.loads(r.out)}
    assert checks["git-worker"]["status"] == checks["dulwich"]["status"] == "ok", checks
    out = sandbox.root / "candidates"
    line = "git-worker sp"
    r = sandbox.run("git-worker", cwd=repo.path, env={
        **IMPORT_TIMES, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": line,
        "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})
    assert r.code == 0, r.err
    assert out.read_text().split("\013") == ["spawn "]
    modules = imported(r.err)
    assert "site" not in modules and "argcomplete" in modules and "argparse" in modules


def test_the_development_venv_runs_the_checkout_without_site(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    # The .venv make builds for development (make test runs the suite from it): its
    # git-worker is the lean launcher too, written again after each pip install there.
    venv = CHECKOUT / ".venv"
    if not (venv / "bin" / "git-worker").exists():
        pytest.skip(f"no {venv}: make .venv/.test-deps builds it")
    assert (venv / "bin" / "git-worker").read_text().splitlines()[0] == \
        f"#!{venv / 'bin' / 'python'} -S", "stale: make .venv/.test-deps writes it again"
    isolate(sandbox, venv / "bin")
    assert_runs_without_site(sandbox, repo)
    r = repo.ok("version")
    package = CHECKOUT / "lib" / "git_worker"
    assert f"installed:   {package} (checkout, in {CHECKOUT})" in r.out
    assert f"python:      {sys.version.split()[0]} ({venv / 'bin' / 'python'})" in r.out


def test_make_install_outlives_its_checkout_and_uninstall_leaves_nothing(
        sandbox: Sandbox, repo: GitRepo) -> None:
    prefix = sandbox.root / "prefix"
    # A prefix in use: bin/ and share/man/man1 exist (and stay), the rest is created.
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "other-tool").write_text("#!/bin/sh\n")
    (prefix / "share" / "man" / "man1").mkdir(parents=True)
    (prefix / "share" / "man" / "man1" / "other.1").write_text(".TH OTHER 1\n")
    before = listing(prefix)

    source = copy_checkout(sandbox.root / "checkout")
    r = sandbox.run("make", "-C", source, "install", f"PREFIX={prefix}", timeout=600)
    assert r.code == 0, r.out + r.err
    launcher = prefix / "bin" / "git-worker"
    libdir = prefix / "lib" / "git-worker"
    assert launcher.resolve() == libdir / "bin" / "git-worker"
    # The lean launcher, run by the venv's own interpreter (no pyenv shim, no pip wrapper)
    # without site (what that does is proven below).
    assert launcher.read_text().splitlines()[0] == f"#!{libdir / 'bin' / 'python'} -S"
    with open(os.path.realpath(libdir / "bin" / "python"), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    for name in ("share/man/man1/git-worker.1", "share/bash-completion/completions/"
                 "git-worker.bash", "share/zsh/site-functions/_git-worker",
                 "share/fish/vendor_conf.d/git-worker.fish"):
        assert (prefix / name).is_file(), name

    shutil.rmtree(source)  # the checkout is gone: the install must not need it
    isolate(sandbox, prefix / "bin")
    assert_runs_without_site(sandbox, repo)
    repo.ok("spawn", "w1", "--no-launch")
    assert [line.split()[:2] for line in repo.ok("list").out.splitlines()[1:]] == [["w1", "ready"]]
    assert f"(make install, in {libdir})" in repo.ok("version").out
    assert json.loads(repo.worker("doctor", "--json").out)[0]["status"] == "ok"

    # A hook gone: the hint names make install; run from another copy of the source (the
    # first one is gone), it repairs the installation.
    site_packages = next((libdir / "lib").glob("python*/site-packages"))
    (site_packages / "git_worker" / "hooks" / "claude-code" / "event").unlink()
    r = repo.worker("spawn", "c1", "-a", "claude", "-d", "task")
    assert r.err.endswith(f"\nhint: reinstall: make install PREFIX={prefix}, in a git-worker "
                          "checkout\n")
    other = copy_checkout(sandbox.root / "other-checkout")
    r = sandbox.run("make", "-C", other, "install", f"PREFIX={prefix}", timeout=600)
    assert r.code == 0, r.out + r.err
    assert json.loads(repo.worker("doctor", "--json").out)[0]["status"] == "ok"

    # Uninstall (after that reinstall, which must not forget what the first one created).
    r = sandbox.run("make", "-C", other, "uninstall", f"PREFIX={prefix}")
    assert r.code == 0, r.out + r.err
    assert listing(prefix) == before
