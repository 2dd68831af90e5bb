"""The manual page, git-worker.1, shipped inside the package.

`git worker --help` is turned by git into `git help worker`, which runs `man git-worker`:
that finds the page installed under <prefix>/share/man/man1 (pip installs it there with
the package; `make install` under $(PREFIX)). `git-worker --help` does the same, and when
man cannot find the page by name it opens the packaged copy by path. Without man, the
short help: cli hands in its parser builder (as it does to completion), so this module
never imports cli.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from git_worker import installation

# typing only for annotations: `--help` need not pay for them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

PAGE = installation.location(installation.MAN_PAGE)


def show(build_parser: Callable[[], argparse.ArgumentParser]) -> int:
    man = shutil.which("man")
    if man is None:
        print("git-worker: 'man' is not installed; showing the short help instead "
              "(install man-db for the manual)", file=sys.stderr)
        build_parser().print_help()
        return 0
    found = subprocess.run([man, "-w", "git-worker"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False).returncode == 0
    # `man -l FILE` reads a page by path (man-db); a path containing '/' works for others.
    argv = [man, "git-worker"] if found else [man, "-l", installation.require(
        installation.MAN_PAGE)]
    return subprocess.run(argv, check=False).returncode
