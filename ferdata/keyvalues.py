"""``KEY=VALUE`` options (``--hp``, ``--detector-option``): one parser for all of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ferdata.errors import FerdataError


def parse_key_values(items: Iterable[str] | None, *, option: str, example: str) -> dict[str, Any]:
    """``["lr=0.01", "model=short"]`` → dict; values are parsed as JSON when they are JSON
    (numbers, booleans, lists), else kept as strings; dashes in keys become underscores."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FerdataError(f"{option} {item!r} is not KEY=VALUE (e.g. {option} {example})")
        raw = raw.strip()
        try:
            out[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = raw
    return out
