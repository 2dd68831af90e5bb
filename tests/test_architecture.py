"""The shape of the code, checked: no import cycle among git_worker's modules
(tools/import_cycles.py, which `make lint` runs too)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import CHECKOUT

IMPORT_CYCLES = CHECKOUT / "tools" / "import_cycles.py"


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
