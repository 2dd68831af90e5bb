"""The manual page, git-worker.1, shipped inside the package.

`git worker --help` is turned by git into `git help worker`, which runs `man git-worker`:
that finds the page installed under <prefix>/share/man/man1 (pip installs it there with
the package; `make install` under $(PREFIX)). `git-worker --help` does the same, and when
man cannot find the page by name it opens the packaged copy by path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from git_worker import installation

PAGE = installation.location(installation.MAN_PAGE)


def show() -> int:
    man = shutil.which("man")
    if man is None:
        print("git-worker: 'man' is not installed; showing the short help instead "
              "(install man-db for the manual)", file=sys.stderr)
        from git_worker.cli import build_parser

        build_parser().print_help()
        return 0
    found = subprocess.run([man, "-w", "git-worker"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False).returncode == 0
    # `man -l FILE` reads a page by path (man-db); a path containing '/' works for others.
    argv = [man, "git-worker"] if found else [man, "-l", installation.require(
        installation.MAN_PAGE)]
    return subprocess.run(argv, check=False).returncode
