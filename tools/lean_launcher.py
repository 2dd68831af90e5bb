"""Write git-worker's lean launcher for a virtualenv: the checkout's `git-worker` shim, run
by the virtualenv's own Python with -S (no `site`), and doing itself what `site` would have
done there (the Makefile says why: LEAN_SHIM, install).

    VENV/bin/python tools/lean_launcher.py SHIM LAUNCHER

What `site` does for this virtualenv is asked of its interpreter, run with and without -S
(both with -E, so that PYTHONPATH and the like, the same either way, leave no trace), not
worked out here: the sys.path entries it adds (site-packages, and the directories its .pth
files name, as an editable install's lib/) and sys.prefix and sys.exec_prefix (the
virtualenv; installation.py recognises a make install by them). Those values are written
into the launcher, below the shim's marker line; they hold as long as nothing is installed
into the virtualenv, which is why the Makefile writes the launcher again after every pip
install there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MARKER = "# The lean launcher (tools/lean_launcher.py) does here what site does for its venv.\n"
_PROBE = "import json, sys; print(json.dumps([sys.path, sys.prefix, sys.exec_prefix]))"


def _python_state(*flags: str) -> tuple[list[str], str, str]:
    out = subprocess.run([sys.executable, "-E", *flags, "-c", _PROBE], check=True,
                         capture_output=True, text=True).stdout
    path, prefix, exec_prefix = json.loads(out)
    return path, prefix, exec_prefix


def site_work() -> str:
    """The lines that do, when Python runs without site, what this interpreter's site does."""
    path, prefix, exec_prefix = _python_state()
    bare_path, bare_prefix, bare_exec_prefix = _python_state("-S")
    added = [p for p in path if p not in bare_path]
    lines = ["if sys.flags.no_site:  # the #! line's -S\n"]
    if (prefix, exec_prefix) != (bare_prefix, bare_exec_prefix):
        lines.append(f"    sys.prefix, sys.exec_prefix = {prefix!r}, {exec_prefix!r}\n")
    lines.append(f"    sys.path += {added!r}\n")
    return "".join(lines)


def launcher(shim: str) -> str:
    lines = shim.splitlines(keepends=True)
    if not lines[0].startswith("#!") or lines.count(MARKER) != 1:
        raise SystemExit(f"lean_launcher.py: the shim has no #! line or not one marker line "
                         f"({MARKER.strip()!r})")
    at = lines.index(MARKER) + 1
    return "".join([f"#!{sys.executable} -S\n", *lines[1:at], site_work(), *lines[at:]])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    shim, out = argv
    with open(shim, encoding="utf-8") as f:
        text = launcher(f.read())
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(out + ".tmp", 0o755)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
