"""Face preprocessing: detectors behind one registry, CLAHE, rotation correction, spatial
normalisation, and the per-image pipeline that writes ``faces.parquet`` and PNG crops."""

from __future__ import annotations

from ferdata.faces.base import Detector, Face
from ferdata.registry import Registry

DETECTORS: Registry[Detector] = Registry("detector")
register_detector = DETECTORS.register


def list_detectors(pattern: str | None = None) -> list[str]:
    return DETECTORS.names(pattern)


def create_detector(name: str, **options) -> Detector:
    return DETECTORS.create(name, **options)


def get_detector_class(name: str) -> type[Detector]:
    return DETECTORS.get(name)  # type: ignore[return-value]


def detector_options(name: str, options: dict | None = None) -> dict:
    """Every constructor option of detector ``name`` with its value (defaults filled in),
    so a config names exactly what ran without loading any model; unknown keys are an error."""
    import inspect

    from ferdata.errors import FerdataError

    params = {k: p for k, p in inspect.signature(get_detector_class(name).__init__).parameters.items()
              if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    options = dict(options or {})
    unknown = sorted(set(options) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        raise FerdataError(f"detector {name!r} has no option {', '.join(unknown)}; its options: {known}")
    resolved = {k: options.get(k, p.default) for k, p in params.items()}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}


# Importing the detector modules registers them (their heavy imports happen on construction).
from ferdata.faces import given, haar, mediapipe_detector, mtcnn  # noqa: E402,F401

__all__ = ["DETECTORS", "Detector", "Face", "create_detector", "detector_options", "get_detector_class",
           "list_detectors", "register_detector"]
