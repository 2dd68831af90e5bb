"""Fail on an import cycle among a package's modules (`make lint` runs it on git_worker).

The graph is read from the source with ast, nothing is imported. Every import counts,
wherever it is written: at the top of a module, inside a function (the lazy imports that
keep completion and `list` fast), or under `if TYPE_CHECKING:`. A function-level import
is still a dependency: manual.py once imported cli.py inside a function while cli.py
imported manual.py, a cycle no top-level scan would see.

    python tools/import_cycles.py [PACKAGE_DIR]      (default: lib/git_worker)

Exit 0 and nothing printed when there is no cycle but the known ones below; else exit 1
and one line per cycle: a new one, or a known one that is gone (then drop it from KNOWN).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Cycles there are today, each with why; the list only shrinks.
KNOWN = {
    # registry.store.update publishes every change to the team's remote (team.after_write) and
    # claim refuses another host's id (team.refuse_foreign); team reads and writes records
    # through registry. Breaking it means registry taking a publisher it is handed.
    frozenset({"git_worker.registry.store", "git_worker.team"}):
        "registry publishes through team, team keeps records through registry",
}


def module_names(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    root = package.parent
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from its own package (or a parent)
                anchor = name.split(".")[:len(name.split(".")) - node.level + is_package]
                source = ".".join(anchor + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports pkg.mod; `from mod import name`, mod.
            for alias in node.names:
                child = f"{source}.{alias.name}"
                found.add(child if child in modules else source)
    return {m for m in found if m in modules and m != name}


def graph(package: Path) -> dict[str, set[str]]:
    modules = module_names(package)
    return {name: imports(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle for each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges) + 100))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_path_through(sorted(g), edges) for g in sorted(groups)]


def _path_through(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the group's first module back to it, to show."""
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node] & set(group)):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def main(argv: list[str]) -> int:
    package = Path(argv[0] if argv else "lib/git_worker")
    found = cycles(graph(package))
    groups = {frozenset(cycle) for cycle in found}
    problems = [f"import cycle: {' -> '.join(c)}" for c in found if frozenset(c) not in KNOWN]
    if package.name == "git_worker":  # the known cycles are git_worker's
        problems += [f"known import cycle is gone (drop it from KNOWN in {__file__}): "
                     + ", ".join(sorted(group)) for group in KNOWN if group not in groups]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
