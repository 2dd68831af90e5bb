"""Where git-worker is installed, and the files it ships beside its modules.

Every file the package reads at run time that is not Python is named here once, relative
to the package directory: the agent hooks, the git hook, the manual, the completion
scripts, the prompt template. They all live inside the package (lib/git_worker/), so
every way of installing it carries them (pyproject's package-data takes each directory
whole); the checkout's top-level hooks/ is a symlink to lib/git_worker/hooks.

Code that hands one of these files to another program (an agent, git) asks `require`
for its path: a missing or non-executable file is then an error that names it and says
how to repair this installation — which depends on how git-worker was installed
(`current().repair`). `doctor` checks every file with `problems`.
"""

from __future__ import annotations

import os
import sys

from git_worker import __version__
from git_worker.errors import WorkerError

# json and shlex are imported where a hint is written or pip's record read: spawn, which
# finds its prompt template here, needs neither (~3 ms of CPU).

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Written by `make install` into the virtualenv it creates ($(PREFIX)/lib/git-worker):
# what it put outside that directory, for `make uninstall`, and the checkout it came from.
MAKE_INSTALL_MANIFEST = "make-install.manifest"
PIPX_METADATA = "pipx_metadata.json"  # pipx keeps it in the root of each of its venvs


class Shipped:
    # Plain classes, not dataclasses: spawn reads the built-in prompt template through
    # this module, and `import dataclasses` (it imports inspect) costs it ~10 ms.
    __slots__ = ("path", "executable", "purpose")

    def __init__(self, path: str, executable: bool, purpose: str) -> None:
        self.path = path  # relative to the package directory, '/'-separated
        self.executable = executable  # run by another program (an agent, git), not read by us
        self.purpose = purpose


CLAUDE_EVENT_HOOK = Shipped("hooks/claude-code/event", True, "Claude Code's hooks")
CODEX_NOTIFY_HOOK = Shipped("hooks/codex/notify", True, "Codex's notify program")
REFERENCE_TRANSACTION_HOOK = Shipped("hooks/reference-transaction", True,
                                     "the git hook `git worker hooks install` installs")
MAN_PAGE = Shipped("man/git-worker.1", False, "the manual")
BASH_COMPLETION = Shipped("shell/git-worker.bash", False, "bash completion")
ZSH_COMPLETION = Shipped("shell/_git-worker", False, "zsh completion")
FISH_COMPLETION = Shipped("shell/git-worker.fish", False, "fish completion")
PROMPT_TEMPLATE = Shipped("templates/prompt.md", False, "the built-in prompt template")

SHIPPED = (CLAUDE_EVENT_HOOK, CODEX_NOTIFY_HOOK, REFERENCE_TRANSACTION_HOOK, MAN_PAGE,
           BASH_COMPLETION, ZSH_COMPLETION, FISH_COMPLETION, PROMPT_TEMPLATE)


def location(shipped: Shipped) -> str:
    return os.path.join(PACKAGE_DIR, *shipped.path.split("/"))


def problem(shipped: Shipped) -> str | None:
    """What is wrong with the installed file (None: nothing)."""
    path = location(shipped)
    if not os.path.isfile(path):
        return "missing"
    if shipped.executable and not os.access(path, os.X_OK):
        return "not executable"
    return None


def require(shipped: Shipped) -> str:
    """The file's path, or an error naming it and how to repair this installation."""
    what = problem(shipped)
    if what is None:
        return location(shipped)
    raise WorkerError(f"git-worker's {shipped.path} ({shipped.purpose}) is {what} in this "
                      f"installation: {location(shipped)}", hint=current().repair(shipped))


def problems() -> list[tuple[Shipped, str]]:
    return [(s, what) for s in SHIPPED if (what := problem(s)) is not None]


class Kind:
    """How git-worker was installed (plain strings, not an enum: see record.State)."""

    CHECKOUT = "checkout"  # run from the source tree (also `pip install -e`)
    MAKE_INSTALL = "make install"
    PIPX = "pipx"
    PIP = "pip"


class Installation:
    __slots__ = ("kind", "root", "source", "pip_target")

    def __init__(self, kind: str, root: str, source: str | None,
                 pip_target: tuple[str, ...]) -> None:
        self.kind = kind
        self.root = root  # the checkout, the virtualenv or the prefix that holds the package
        self.source = source  # where it was installed from, when that is known
        self.pip_target = pip_target  # pip's option that puts it back where it is

    def repair(self, shipped: Shipped | None = None) -> str:
        """The command that puts the shipped files back, for this kind of installation."""
        import shlex

        if self.kind == Kind.CHECKOUT:
            if not os.path.exists(os.path.join(self.root, ".git")):
                return f"get a fresh copy of git-worker's source in place of {self.root}"
            # git checkout restores the mode as well (when core.fileMode is on, the default).
            where = "lib/git_worker/" + (shipped.path if shipped else "")
            return "restore it: " + shlex.join(["git", "-C", self.root, "checkout", "--", where])
        if self.kind == Kind.MAKE_INSTALL:
            prefix = os.path.dirname(os.path.dirname(self.root))
            if self.source and os.path.isfile(os.path.join(self.source, "Makefile")):
                return "reinstall: " + shlex.join(["make", "-C", self.source, "install",
                                                   f"PREFIX={prefix}"])
            return (f"reinstall: {shlex.join(['make', 'install', f'PREFIX={prefix}'])}, in a "
                    "git-worker checkout")
        if self.kind == Kind.PIPX:
            return f"reinstall: pipx reinstall {shlex.quote(os.path.basename(self.root))}"
        argv = [sys.executable, "-m", "pip", "install", "--force-reinstall", "--no-deps",
                *self.pip_target, self.source or "git-worker"]
        return ("reinstall: " + shlex.join(argv)
                + ("" if self.source else " (or the wheel or directory you installed from)"))


def current() -> Installation:
    """How the running package was installed, judged from where its files are."""
    lib = os.path.dirname(PACKAGE_DIR)
    checkout = os.path.dirname(lib)
    if os.path.basename(lib) == "lib" and os.path.isfile(os.path.join(checkout,
                                                                      "pyproject.toml")):
        return Installation(Kind.CHECKOUT, checkout, checkout, ())
    # sys.prefix is the virtualenv, under make's lean launcher too: it runs Python without
    # site, which sets it, and sets it itself (tools/lean_launcher.py).
    manifest = os.path.join(sys.prefix, MAKE_INSTALL_MANIFEST)
    if _inside(PACKAGE_DIR, sys.prefix) and os.path.isfile(manifest):
        return Installation(Kind.MAKE_INSTALL, sys.prefix, _manifest_source(manifest), ())
    if _inside(PACKAGE_DIR, sys.prefix) and os.path.isfile(os.path.join(sys.prefix,
                                                                        PIPX_METADATA)):
        return Installation(Kind.PIPX, sys.prefix, None, ())
    import site  # here, when a hint or --version asks: not on every spawn

    if _inside(PACKAGE_DIR, site.getusersitepackages()):
        root, target = site.getuserbase(), ["--user"]
    elif _inside(PACKAGE_DIR, sys.prefix):
        root, target = sys.prefix, []
    else:  # pip install --prefix P: P/lib/pythonX.Y/site-packages/git_worker
        root = os.path.dirname(os.path.dirname(os.path.dirname(lib)))
        target = ["--prefix", root]
    return Installation(Kind.PIP, root, _pip_source(lib), tuple(target))


def describe() -> dict[str, str]:
    """What `git worker --version` prints: ours, where we are, and what we run on."""
    here = current()
    return {
        "version": __version__,
        "installed": f"{PACKAGE_DIR} ({here.kind}, in {here.root})",
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "dulwich": _version_of("dulwich"),
        "argcomplete": _version_of("argcomplete"),
    }


def _version_of(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _inside(path: str, directory: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(directory) + os.sep)


def _manifest_source(manifest: str) -> str | None:
    try:
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                if line.startswith("source "):
                    return line[len("source "):].rstrip("\n")
    except OSError:
        pass
    return None


def _pip_source(site_packages: str) -> str | None:
    """Where pip installed us from: direct_url.json (PEP 610) in our .dist-info."""
    import json

    try:
        infos = [n for n in os.listdir(site_packages)
                 if n.startswith("git_worker-") and n.endswith(".dist-info")]
    except OSError:
        return None
    for info in infos:
        try:
            with open(os.path.join(site_packages, info, "direct_url.json"),
                      encoding="utf-8") as f:
                url = json.load(f).get("url", "")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(url, str) and url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            return unquote(urlsplit(url).path)
        if isinstance(url, str) and url:
            return url
    return None
