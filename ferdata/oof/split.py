"""Which folds ``ferdata flag`` scores on: the strictest split the data allows.

Every image must be held out exactly once, by a model that saw neither it, nor its
subject, nor a copy of it: subject-grouped k-fold (``spi``) when the manifest has
subjects, else k-fold over images. Both keep exact copies and near-identical pictures
(pHash within two bits) in one fold, as every ferdata split does, so a re-encoded copy in
the training part cannot vouch for the label it is asked to doubt.
"""

from __future__ import annotations

from ferdata.manifest import Manifest
from ferdata.progress import ProgressSink

DEFAULT_FOLDS = 5


def flag_protocol(manifest: Manifest, folds: int = DEFAULT_FOLDS) -> tuple[str, int]:
    """``("spi", k)`` with at most one fold per subject when there are subjects, else ``("kfold", folds)``."""
    table = manifest.images(columns=["subject_id", "readable"])
    subjects = {s for s, ok in zip(table.column("subject_id").to_pylist(), table.column("readable").to_pylist())
                if s is not None and ok}
    if len(subjects) >= 2:
        return "spi", min(folds, len(subjects))
    return "kfold", folds


def flag_split(manifest: Manifest, *, folds: int = DEFAULT_FOLDS, seed: int = 0, classes: str | None = None,
               workers: int | None = None, progress: ProgressSink | None = None):  # noqa: ANN201 - SplitResult
    """The out-of-fold split, made in memory (nothing under ``splits/`` is written or replaced)."""
    from ferdata.splits import make_split

    protocol, k = flag_protocol(manifest, folds)
    return make_split(manifest, protocol, folds=k, seed=seed, classes=classes, write=False, workers=workers,
                      progress=progress)
