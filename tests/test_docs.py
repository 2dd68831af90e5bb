"""The guide and the docs it points to: README, CONTRIBUTING and docs/*.md link only to
files and headings that exist, README stays a guide, and no page keeps a settings table of
its own (the reference is the manual, checked against config.SETTINGS in
tests/test_manual.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import CHECKOUT
from git_worker.config import SETTINGS

PAGES = [CHECKOUT / "README.md", CHECKOUT / "CONTRIBUTING.md",
         *sorted((CHECKOUT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (outside code blocks)."""
    found, fence = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"#+ (.*)", line)):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            found.add(slug)
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(CHECKOUT)))
def test_every_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (anchor and anchor not in anchors(dest)):
            broken.append(target)
    assert broken == []


def test_every_doc_is_reachable_from_readme() -> None:
    readme = links(CHECKOUT / "README.md")
    linked = {(CHECKOUT / t.partition("#")[0]).resolve() for t in readme}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_readme_is_a_guide() -> None:
    text = (CHECKOUT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert "make demo" in text and "make test" in text


def settings_table_rows(text: str) -> list[str]:
    """Markdown table rows whose first cell is a setting (`worker.x` or worker.x)."""
    keys = {s.key.lower() for s in SETTINGS}
    return [line for line in text.splitlines()
            if (m := re.match(r"\s*\|\s*`?([\w.]+)`?\s*\|", line)) and m[1].lower() in keys]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(CHECKOUT)))
def test_no_page_keeps_a_settings_table(page: Path) -> None:
    """A hand-kept table of settings drifts (README's lacked three); the manual is the one
    list, tested against SETTINGS."""
    assert settings_table_rows(page.read_text()) == []


def test_a_settings_table_is_recognised() -> None:
    table = ("| Setting | Default |\n|---|---|\n| `worker.agent` | claude |\n"
             "| worker.fetchTimeout | 20 |\n| `worker.agent.NAME.command` | — |\n")
    assert settings_table_rows(table) == ["| `worker.agent` | claude |",
                                          "| worker.fetchTimeout | 20 |"]


def test_contributing_names_every_module() -> None:
    """CONTRIBUTING's module map ("Where things live") names every module, and only modules
    that exist: a new module is placed there, a moved one moved there too."""
    text = (CHECKOUT / "CONTRIBUTING.md").read_text()
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    named = {n for n in re.findall(r"`([a-z_/]+(?:\.py|/))`", section)
             if not n.startswith(("lib/", "tests/"))}
    package = CHECKOUT / "lib" / "git_worker"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if "commands" not in p.parts}
    modules = {m.removesuffix("__init__.py") if m.endswith("/__init__.py") else m
               for m in modules} - {"__init__.py"}
    assert sorted(modules - named) == []  # every module is placed
    assert sorted(n for n in named if not (package / n).exists()) == []  # none is stale
