"""Out-of-fold scoring for ``ferdata flag``: the split, frozen face descriptors, a head per fold."""

from __future__ import annotations

from ferdata.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "BackboneSpec": "ferdata.oof.backbone",
    "HeadSpec": "ferdata.oof.heads",
    "ScoreResult": "ferdata.oof.scorer",
    "flag_protocol": "ferdata.oof.split",
    "flag_split": "ferdata.oof.split",
    "score_out_of_fold": "ferdata.oof.scorer",
})

__all__ = ["BackboneSpec", "HeadSpec", "ScoreResult", "flag_protocol", "flag_split", "score_out_of_fold"]
