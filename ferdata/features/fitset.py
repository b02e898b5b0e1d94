"""``--fit-on``: which images the reduction is fitted on.

Fitting PCA and the standardiser on every image lets the test images shape the transform
(a leak). ``SPLIT[:ROLE[:FOLD]]`` reads ``<manifest>/splits/<SPLIT>.parquet`` (columns
``image_id``, ``fold``, ``role``) and fits on one role of one fold only: the role defaults
to ``train`` and the fold to 0. ``all`` fits on every described image, as paper 000 did;
it must be asked for explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ferdata.errors import FerdataError
from ferdata.manifest import Manifest
from ferdata.manifest.tables import ROLES


@dataclass(frozen=True)
class FitOn:
    split: str | None  # None = all images
    role: str | None = None
    fold: int | None = None

    def describe(self) -> str:
        return "all" if self.split is None else f"{self.split}:{self.role}:{self.fold}"

    def as_dict(self) -> dict:
        return {"split": self.split, "role": self.role, "fold": self.fold, "spec": self.describe()}


def parse_fit_on(spec: str) -> FitOn:
    """``all`` | ``SPLIT`` | ``SPLIT:ROLE`` | ``SPLIT:ROLE:FOLD`` (role train, fold 0 by default)."""
    text = spec.strip()
    if text.lower() == "all":
        return FitOn(None)
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise FerdataError(f"--fit-on {spec!r}: use SPLIT[:ROLE[:FOLD]] (e.g. spi-2:train or spi-2:val:1) or all")
    role = (parts[1] if len(parts) > 1 and parts[1] else "train").lower()
    if role not in ROLES:
        raise FerdataError(f"--fit-on {spec!r}: role {role!r} is not one of {', '.join(ROLES)}")
    try:
        fold = int(parts[2]) if len(parts) > 2 and parts[2] else 0
    except ValueError:
        raise FerdataError(f"--fit-on {spec!r}: the fold must be a whole number (e.g. spi-2:val:0)") from None
    return FitOn(parts[0], role, fold)


def fit_image_ids(manifest: Manifest, fit_on: FitOn) -> set[str] | None:
    """The image ids to fit on (``None`` = all)."""
    if fit_on.split is None:
        return None
    path = manifest.dir / "splits" / f"{fit_on.split}.parquet"
    if not path.exists():
        folder = manifest.dir / "splits"
        known = sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
        hint = f" (have: {', '.join(known)})" if known else ""
        raise FerdataError(
            f"no split {fit_on.split!r} at {path}{hint}; create it with 'ferdata split {manifest.name}' "
            "or fit on everything with --fit-on all"
        )
    try:
        table = pq.read_table(path, columns=["image_id", "fold", "role"])
    except Exception as exc:  # noqa: BLE001 - any unreadable split is the user's to fix
        raise FerdataError(f"{path} is not a split table with image_id, fold and role ({exc}); re-create it") from None
    mask = pc.and_(pc.equal(table.column("role"), fit_on.role), pc.equal(table.column("fold"), fit_on.fold))
    ids = set(table.filter(mask).column("image_id").to_pylist())
    if not ids:
        roles = sorted(set(table.column("role").drop_null().to_pylist()))
        folds = sorted(set(table.column("fold").drop_null().to_pylist()))
        raise FerdataError(
            f"split {fit_on.split!r} has no {fit_on.role!r} images in fold {fit_on.fold} "
            f"(roles: {', '.join(roles) or 'none'}; folds: {', '.join(map(str, folds)) or 'none'})"
        )
    return ids
