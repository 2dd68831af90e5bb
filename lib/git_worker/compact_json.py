"""JSON read and written (compactly) by CPython's own C codec, without importing `json`.

`import json` imports `re` (and `re` imports `enum`, `functools`…) for the few regular
expressions of json's pure-Python fallbacks: ~6 ms of every `list`, ~10% of it (measured).
The work itself is done in C by `_json`, the module json drives: here it is driven the
same way, with the same settings as `json.loads(data)` and `json.dumps(value,
ensure_ascii=False)`. Anything out of the ordinary — not UTF-8, an error, no `_json` — goes
to `json` itself, so that every answer and every error is json's, word for word
(tests/test_output.py compares the two on generated values).
"""

from __future__ import annotations

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # another Python: json alone
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"  # json's WHITESPACE, [ \t\n\r]*
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Decoder:
    """The settings _json.make_scanner reads: json.JSONDecoder's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _not_serializable(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


# The encoder's circular-reference markers, empty between calls: a call that fails leaves
# its own behind, which dumps clears (a later container at one of those addresses would
# read as a cycle).
_MARKERS: dict[int, object] = {}

try:
    _scan: Any = _json.make_scanner(_Decoder())  # type: ignore[arg-type]  # any object with these attributes
    # json.JSONEncoder(ensure_ascii=False)'s C encoder: markers (check_circular), default,
    # string encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan.
    _encode: Any = _json.make_encoder(_MARKERS, _not_serializable, _json.encode_basestring,
                                      None, ": ", ", ", False, False, True)
except (AttributeError, TypeError):  # no _json, or one that takes other arguments
    _scan = _encode = None


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``."""
    if _scan is not None:
        try:
            # json.loads decodes bytes in the encoding their first bytes tell: UTF-8 for a
            # document that starts with an ASCII character, as every record does.
            text = data if isinstance(data, str) else (
                data.decode("utf-8", "surrogatepass")
                if len(data) >= 2 and 0 < data[0] < 0x80 and data[1] else None)
            if text is not None:
                value, end = _scan(text, len(text) - len(text.lstrip(_WHITESPACE)))
                if not text[end:].strip(_WHITESPACE):
                    return value
        except Exception:  # noqa: BLE001 - json says what is wrong, below
            # (The C scanner builds its error from json.decoder, which it expects imported:
            # without it, a SystemError. Whatever went wrong, json's answer is the one.)
            pass
    import json

    return json.loads(data)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=indent)``."""
    if _encode is not None and not isinstance(value, str):
        try:
            if indent is None:
                return "".join(_encode(value, 0))
            return _indented(value, " " * indent, "\n")
        except Exception:  # noqa: BLE001 - json says what is wrong, below
            _MARKERS.clear()
    import json

    return json.dumps(value, ensure_ascii=False, indent=indent)


def _indented(value: Any, step: str, newline: str) -> str:
    """json's layout with an indent (each item on a line of its own, one ``step`` deeper,
    "," between items and ": " after keys), every scalar written by the C encoder. A key
    that is not a string (json converts those) raises: json's own answer is taken then."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = newline + step
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("a key json converts")
            items.append(f"{_json.encode_basestring(key)}: {_indented(item, step, inner)}")
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = newline + step
        return ("[" + inner + ("," + inner).join(_indented(item, step, inner) for item in value)
                + newline + "]")
    return "".join(_encode(value, 0))
