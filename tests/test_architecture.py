"""The shape of the code, checked: domain modules never print (commands/__init__.py's
rule), and no import cycle among git_worker's modules (tools/import_cycles.py, which
`make lint` runs too)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import CHECKOUT

IMPORT_CYCLES = CHECKOUT / "tools" / "import_cycles.py"
PACKAGE = CHECKOUT / "lib" / "git_worker"

# Where output is the job, by the rule: the command line and the commands, and the helpers
# they print with.
PRESENTATION = ("cli.py", "output.py", "commands/")
# Modules below the commands that write to stdout/stderr all the same, and why.
EXEMPT = {
    "runner.py": "the runner process: the agent's output to the pane is its job, and its "
                 "own failures go to its stderr, which is runner.log",
    "agents/events.py": "runs in an agent's hook process, whose stderr the agent shows",
    "manual.py": "the --help command itself (cli hands it the parser)",
    "failpoints.py": "a test failpoint says on stderr that it paused, and where",
    "dashboard/app.py": "the watch dashboard's user interface (commands/watch.py runs it)",
    "hosts.py": "Session.run passes a remote `git worker`'s stderr through to ours, as its "
                "stdout is, inherited",
}


def prints(path: Path) -> list[str]:
    """Each place a module writes to the terminal: print() and print_*() calls
    (print_json, print_help, print_exc…), sys.stdout/sys.stderr, os.write(1 or 2, …)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else ""
            if name == "print" or name.startswith("print_"):
                found.append((node.lineno, f"{name}()"))
            elif (name == "write" and isinstance(func, ast.Attribute)
                  and isinstance(func.value, ast.Name) and func.value.id == "os"
                  and node.args and isinstance(node.args[0], ast.Constant)
                  and node.args[0].value in (1, 2)):
                found.append((node.lineno, f"os.write({node.args[0].value})"))
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "sys"
              and node.attr in ("stdout", "stderr", "__stdout__", "__stderr__")):
            found.append((node.lineno, f"sys.{node.attr}"))
    return [f"{what} at line {line}" for line, what in sorted(found)]


def domain_modules() -> list[str]:
    return [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
            if not str(p.relative_to(PACKAGE)).startswith(PRESENTATION)]


def test_domain_modules_never_print() -> None:
    printing = {name: prints(PACKAGE / name) for name in domain_modules() if name not in EXEMPT}
    assert {name: where for name, where in printing.items() if where} == {}


def test_every_exemption_is_needed() -> None:
    """An exempt module that no longer prints leaves the list (it stays short)."""
    there = [name for name in EXEMPT if (PACKAGE / name).exists()]
    assert [name for name in there if not prints(PACKAGE / name)] == []
    assert "commands/fsck.py" not in domain_modules() and "fsck.py" in domain_modules()


def test_the_scan_sees_every_way_of_printing(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(textwrap.dedent("""\
        import os, sys
        from git_worker import output

        def f(parser, stream):
            print("x")
            output.print_json({})
            parser.print_help()
            sys.stderr.write("x")
            out = sys.stdout
            os.write(2, b"x")
            os.write(fd, b"x")  # a file of its own: not the terminal
            stream.write("x")  # a stream it was handed: not the terminal
            return sprint("x")
        """))
    assert prints(module) == ["print() at line 5", "print_json() at line 6",
                              "print_help() at line 7", "sys.stderr at line 8",
                              "sys.stdout at line 9", "os.write(2) at line 10"]


def import_cycles(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(IMPORT_CYCLES), str(package)],
                          capture_output=True, text=True, check=False, timeout=60)


def package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg


def test_git_worker_has_no_import_cycle() -> None:
    r = import_cycles(CHECKOUT / "lib" / "git_worker")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    # What manual.py and cli.py were: one imports the other at the top, the other imports
    # it back inside a function.
    pkg = package(tmp_path, {
        "cli.py": "from pkg import manual\n",
        "manual.py": """\
            def show():
                from pkg.cli import build_parser
                return build_parser
            """,
        "alone.py": "import os\nfrom pkg import manual\n",
    })
    r = import_cycles(pkg)
    assert (r.returncode, r.stdout) == (1, "import cycle: pkg.cli -> pkg.manual -> pkg.cli\n")


def test_longer_and_relative_cycles_are_found(tmp_path: Path) -> None:
    pkg = package(tmp_path, {
        "a.py": "from . import b\n",
        "b.py": "import pkg.sub.c\n",
        "sub/__init__.py": "",
        "sub/c.py": """\
            TYPE_CHECKING = False
            if TYPE_CHECKING:
                from ..a import thing
            """,
        "d.py": "from pkg.a import b\n",  # d -> a (and -> b), nothing back to d
    })
    r = import_cycles(pkg)
    assert (r.returncode, r.stdout) == (1, "import cycle: pkg.a -> pkg.b -> pkg.sub.c -> pkg.a\n")


def test_no_cycle_passes(tmp_path: Path) -> None:
    pkg = package(tmp_path, {
        "a.py": "from pkg import b\nfrom pkg.b import name\nimport json\n",
        "b.py": "def f():\n    from pkg import c\n",
        "c.py": "from . import __name__ as n\n",
    })
    r = import_cycles(pkg)
    assert (r.returncode, r.stdout) == (0, "")
