"""The prompt an agent receives: the task plus plain working instructions.

A template (built-in: templates/prompt.md; or the file worker.promptTemplate names) holds
`{field}` placeholders. Substitution is one pass over the template only: text from the
task (which may contain braces, `{branch}`, `$(…)`) is inserted as it is and never
expanded again, and the template never reaches a shell or str.format (whose `{x.attr}`
would let a template reach into objects).
"""

from __future__ import annotations

import os

from git_worker.config import Config
from git_worker.errors import WorkerError

FIELDS = ("id", "title", "description", "design", "acceptance_criteria", "notes",
          "task_details", "source", "branch", "base", "base_oid", "base_oid_short",
          "worktree")


class Template:
    # A plain class, not a dataclass: see spawn.Task.
    __slots__ = ("text", "origin")

    def __init__(self, text: str, origin: str) -> None:
        self.text = text
        self.origin = origin  # "built-in" or the file's path


def builtin() -> Template:
    # A file next to this module, not importlib.resources: that import alone costs every
    # spawn ~10 ms, and git-worker is never run from a zip.
    from git_worker import installation

    with open(installation.require(installation.PROMPT_TEMPLATE), encoding="utf-8") as f:
        text = f.read()
    return Template(text, "built-in")


def load(config: Config, main_worktree: str) -> Template:
    """worker.promptTemplate (relative to the main worktree), else the built-in one."""
    setting = config.string("worker.promptTemplate")
    if setting is None:
        return builtin()
    path = os.path.join(main_worktree, os.path.expanduser(setting))
    try:
        with open(path, encoding="utf-8") as f:
            return Template(f.read(), path)
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise WorkerError(f"cannot read the prompt template {path} (worker.promptTemplate): {why}",
                          hint="fix the path, or use the built-in template: "
                               "git config --unset worker.promptTemplate") from None


def details(*, description: str, design: str = "", acceptance_criteria: str = "",
            notes: str = "") -> str:
    """The task's texts under headings, leaving out the empty ones."""
    parts = [description.strip() or "(no description given)"]
    for heading, text in (("Design", design), ("Acceptance criteria", acceptance_criteria),
                          ("Notes", notes)):
        if text.strip():
            parts.append(f"{heading}:\n{text.strip()}")
    return "\n\n".join(parts)


def render(template: Template, values: dict[str, str]) -> str:
    """Replace each known `{field}` once; leave any other braces as they are. (A scan, not
    a regular expression: `import re` costs every spawn ~2 ms before its checkout.)"""
    text = template.text
    parts = []
    done = 0  # text[:done] is in parts
    start = text.find("{")
    while start >= 0:
        end = text.find("}", start + 1)
        if end < 0:
            break
        name = text[start + 1:end]
        if name in values:
            parts += [text[done:start], values[name]]
            done = end + 1
            start = text.find("{", done)
        else:  # not a field, or `{{id}`: the next brace may open one
            start = text.find("{", start + 1)
    parts.append(text[done:])
    return "".join(parts)
