"""The face-detector registry (a leaf: detectors import it, it imports no detector)."""

from __future__ import annotations

import inspect

from ferdata.errors import FerdataError
from ferdata.faces.base import Detector
from ferdata.registry import Registry

DETECTORS: Registry[Detector] = Registry(
    "detector",
    builtins=(
        "ferdata.faces.given",
        "ferdata.faces.haar",
        "ferdata.faces.mediapipe_detector",
        "ferdata.faces.mtcnn",
        "ferdata.faces.whole",
    ),
    entry_point_group="ferdata.detectors",
)
register_detector = DETECTORS.register
list_detectors = DETECTORS.list
create_detector = DETECTORS.create
get_detector_class = DETECTORS.get


def detector_options(name: str, options: dict | None = None) -> dict:
    """Every constructor option of detector ``name`` with its value (defaults filled in),
    so a config names exactly what ran without loading any model; unknown keys are an error."""
    params = {k: p for k, p in inspect.signature(get_detector_class(name).__init__).parameters.items()
              if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    options = dict(options or {})
    unknown = sorted(set(options) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        raise FerdataError(f"detector {name!r} has no option {', '.join(unknown)}; its options: {known}")
    resolved = {k: options.get(k, p.default) for k, p in params.items()}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}
