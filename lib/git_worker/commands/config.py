"""git worker config: the effective value of every worker.* setting, and its origin."""

from __future__ import annotations

from git_worker import agents, output
from git_worker.config import SETTINGS, Config


def rows(config: Config) -> list[dict[str, object]]:
    result: list[dict[str, object]] = []
    for s in SETTINGS:
        entries = config._all(s.key)
        if s.kind == "multi":
            value: object = [e.value for e in entries if e.value]
        else:
            value = config.raw(s.key) if entries else s.default
        last = entries[-1] if entries else None
        result.append({"key": s.key, "value": value, "default": s.default,
                       "scope": last.scope if last else "default",
                       "origin": last.origin if last else None, "doc": s.doc})
    seen = {s.key.lower() for s in SETTINGS}
    for e in config.entries:
        if e.key.lower() in seen:
            continue
        seen.add(e.key.lower())
        parts = e.key.split(".")
        known = len(parts) >= 4 and parts[1] == "agent" and parts[-1] in ("command", "args")
        variable = len(parts) == 3 and parts[1] == "env"
        doc = "custom agent" if known else (
            f"environment variable {parts[-1].upper().replace('-', '_')} for each worker"
            if variable else "unknown setting (typo?)")
        result.append({"key": e.key, "value": config.raw(e.key), "default": None,
                       "scope": e.scope, "origin": e.origin, "doc": doc})
    return result


def run(config: Config, *, as_json: bool) -> int:
    table = rows(config)
    if as_json:
        output.print_json(table)
        return 0
    lines = []
    for r in table:
        value = r["value"]
        if isinstance(value, list):
            shown = ", ".join(value)
        else:
            shown = "-" if value is None else str(value)
        where = str(r["scope"]) if r["scope"] == "default" else \
            f"{r['scope']} ({str(r['origin']).removeprefix('file:')})"
        lines.append([output.visible(r["key"]), output.visible(shown or "-"),
                      output.visible(where)])
    print(output.table(["SETTING", "VALUE", "FROM"], lines))
    customs = agents.custom_names(config)
    if customs:
        print(f"\ncustom agents: {', '.join(customs)}")
    return 0
