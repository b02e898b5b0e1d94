"""Face preprocessing: detectors behind one registry (more from the ``ferdata.detectors``
entry-point group), CLAHE, rotation correction, spatial normalisation, and the per-image
pipeline (:mod:`ferdata.faces.preprocess`) that writes ``faces.parquet`` and PNG crops."""

from __future__ import annotations

from ferdata.faces._registry import (DETECTORS, create_detector, detector_options, get_detector_class,
                                     list_detectors, register_detector)
from ferdata.faces.base import Detector, Face

__all__ = ["DETECTORS", "Detector", "Face", "create_detector", "detector_options", "get_detector_class",
           "list_detectors", "register_detector"]
