"""One owner of git: only git.py and repo.py build git argument lists.

Everything else asks them typed questions (`git.is_ancestor`, `git.worktree_remove`,
`Repo.read_ref`…), as git-machete's modules ask its `Git` class. Read from the source with
`ast`, so a new `["git", …]` or `git.run([...])` anywhere else fails here, named by file
and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from conftest import CHECKOUT

LIB = CHECKOUT / "lib" / "git_worker"

# The git layer: the only modules that spell git's argv.
GIT_OWNERS = {"git.py", "repo.py"}

# git.py's raw runners: argv in, process out. Only the git layer calls them.
RAW_RUNNERS = {"run", "output", "interactive", "in_worktree"}

# Lists that start with "git" yet are no git command git-worker runs on a repository,
# each with why. A module listed here that no longer has one fails the test too.
NOT_GIT_COMMANDS = {
    "installation.py": "a command shown to the user in a hint (how to restore a file), "
                       "never run by git-worker",
    "dashboard/model.py": "`git worker <command> <id>`: the dashboard runs git-worker's own "
                          "commands, as the user would type them",
}


def violations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) for each place in ``tree`` that builds or runs git argv itself."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "git"
                and node.func.attr in RAW_RUNNERS):
            yield node.lineno, f"calls git.{node.func.attr}() with an argv of its own"
        elif (isinstance(node, (ast.List, ast.Tuple)) and node.elts
              and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "git"):
            yield node.lineno, 'builds an argv that starts with "git"'
        elif isinstance(node, ast.ImportFrom) and node.module == "git_worker.git":
            for alias in node.names:
                if alias.name in RAW_RUNNERS:
                    yield node.lineno, f"imports git.{alias.name}"


def modules() -> list[str]:
    return sorted(p.relative_to(LIB).as_posix() for p in LIB.rglob("*.py"))


def test_only_the_git_layer_builds_git_argv() -> None:
    found = []
    excused = set()
    for name in modules():
        if name in GIT_OWNERS:
            continue
        for line, what in violations(ast.parse((LIB / name).read_text(), name)):
            if name in NOT_GIT_COMMANDS and what.startswith("builds"):
                excused.add(name)
                continue
            found.append(f"lib/git_worker/{name}:{line}: {what}")
    assert found == [], ("git argv outside git.py/repo.py; add a typed function to git.py "
                         "(or a Repo method) and call that:\n" + "\n".join(found))
    assert excused == set(NOT_GIT_COMMANDS), "an exception below is no longer needed"


def test_the_scratch_reaper_is_handed_its_git_commands() -> None:
    """scratch.py's reaper is a program of its own (run with `python -c`), invisible to the
    scan above as it is a string: it runs the commands git.py gives it, spelling none."""
    from git_worker import scratch

    reaper = ast.parse(scratch._REAPER)
    assert list(violations(reaper)) == []
    words = [n.value for n in ast.walk(reaper)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [w for w in words if w.split(" ")[0] in ("git", "worktree", "prune")]


@pytest.mark.parametrize("source", [
    'git.run(["status"], cwd=".")',
    'git.output(["rev-parse", "HEAD"])',
    'git.in_worktree(pinned, ["merge", "--ff-only", new])',
    'argv = ["fetch", remote]\ngit.run(argv, check=False)',
    'subprocess.run(["git", "worktree", "prune"])',
    'subprocess.call(("git", *argv))',
    "from git_worker.git import run",
])
def test_the_scan_catches_each_way_of_running_git(source: str) -> None:
    assert list(violations(ast.parse(source))) != []


@pytest.mark.parametrize("source", [
    "git.is_ancestor(repo.common_dir, old, tip)",
    "git.worktree_remove(repo.common_dir, path, force=True)",
    'subprocess.run(["tmux", "-V"])',
    "git.clean_env()",
])
def test_the_scan_lets_typed_questions_through(source: str) -> None:
    assert list(violations(ast.parse(source))) == []


def head_reads(tree: ast.AST) -> Iterator[int]:
    """Lines where ``tree`` opens a HEAD file, or asks git for HEAD, itself."""
    for node in ast.walk(tree):
        if _opens_head(node) or (isinstance(node, (ast.List, ast.Tuple)) and any(
                isinstance(e, ast.Constant) and e.value == "HEAD" for e in node.elts)):
            yield node.lineno


def _opens_head(node: ast.AST) -> bool:
    """open(os.path.join(…, "HEAD"), …)"""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "open" and node.args):
        return False
    path = node.args[0]
    return (isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute)
            and path.func.attr == "join" and isinstance(path.args[-1], ast.Constant)
            and path.args[-1].value == "HEAD")


def test_head_is_read_one_way() -> None:
    """Which branch a HEAD names: git.head_branch; which commit: git.head_commit. Nothing
    else opens a HEAD file or asks git about HEAD (writing a new worktree's is not reading)."""
    found = [f"lib/git_worker/{name}:{line}" for name in modules() if name != "git.py"
             for line in head_reads(ast.parse((LIB / name).read_text(), name))]
    assert found == []
    assert sorted(head_reads(ast.parse((LIB / "git.py").read_text()))) != []


@pytest.mark.parametrize("source", [
    'with open(os.path.join(repo.git_dir, "HEAD")) as f: pass',
    'git.in_worktree(pinned, ["rev-parse", "--verify", "HEAD"])',
])
def test_the_head_scan_catches_a_second_way(source: str) -> None:
    assert list(head_reads(ast.parse(source))) != []
