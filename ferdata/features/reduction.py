"""``--reduce pca:K``: each descriptor to its first K principal components, then the
concatenation standardised, as paper 000 and the SFEW baseline do (5 + 5 → 10-D).

The fit uses scikit-learn (``PCA`` with the full SVD, ``StandardScaler``) on the rows
chosen by ``--fit-on``; the fitted numbers are kept as plain lists so the transform can
be stored in ``features.parquet``'s metadata and applied to another dataset with
:meth:`Reduction.transform`, exactly as scikit-learn's ``transform`` would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferdata.errors import FerdataError, arg


def parse_reduce(spec: str | None) -> int | None:
    """``"pca:5"`` → 5; ``None``, ``""`` or ``"none"`` → ``None`` (no reduction)."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    m = re.fullmatch(r"\s*pca\s*:\s*(\d+)\s*", spec.lower())
    if not m or int(m.group(1)) < 1:
        raise FerdataError(f"{arg('reduce')} {spec!r}: use pca:K with K >= 1 (e.g. pca:5), or none")
    return int(m.group(1))


def reduced_column(descriptor: str) -> str:
    return f"{descriptor}_pca"


def fused_column(descriptors: list[str]) -> str:
    """``lpqphog`` for lpq + phog; ``<name>_pca_std`` for a single descriptor."""
    return "".join(descriptors) if len(descriptors) > 1 else f"{descriptors[0]}_pca_std"


@dataclass
class Reduction:
    """A fitted PCA per descriptor plus the standardiser of their concatenation."""

    k: int
    descriptors: list[str]
    components: dict[str, np.ndarray]  # name -> (K, D)
    means: dict[str, np.ndarray]  # name -> (D,)
    explained_variance_ratio: dict[str, np.ndarray]  # name -> (K,)
    scaler_mean: np.ndarray  # (K * n_descriptors,)
    scaler_scale: np.ndarray
    fitted_on: dict[str, Any] = field(default_factory=dict)
    descriptor_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def fused_column(self) -> str:
        return fused_column(self.descriptors)

    def transform(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{descriptor: (N, D)}`` → ``{<name>_pca: (N, K), ..., fused: (N, K·n)}``."""
        out: dict[str, np.ndarray] = {}
        for name in self.descriptors:
            if name not in features:
                raise FerdataError(f"the reduction needs the {name!r} descriptor; compute it with {arg('descriptor')} {name}")
            x = np.asarray(features[name], dtype=np.float64)
            if x.shape[1] != self.means[name].shape[0]:
                raise FerdataError(
                    f"{name} vectors have {x.shape[1]} values but the reduction was fitted on {self.means[name].shape[0]};"
                    " use the same descriptor parameters and face size"
                )
            out[reduced_column(name)] = (x - self.means[name]) @ self.components[name].T
        fused = np.concatenate([out[reduced_column(n)] for n in self.descriptors], axis=1)
        out[self.fused_column] = (fused - self.scaler_mean) / self.scaler_scale
        return out

    def to_metadata(self) -> dict[str, Any]:
        return {
            "method": f"pca:{self.k}",
            "descriptors": list(self.descriptors),
            "pca": {n: {"components": self.components[n].tolist(), "mean": self.means[n].tolist(),
                        "explained_variance_ratio": self.explained_variance_ratio[n].tolist()}
                    for n in self.descriptors},
            "scaler": {"mean": self.scaler_mean.tolist(), "scale": self.scaler_scale.tolist()},
            "fitted_on": self.fitted_on,
            "descriptor_params": self.descriptor_params,
            "columns": {"reduced": [reduced_column(n) for n in self.descriptors], "fused": self.fused_column},
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Reduction:
        """Rebuild from :meth:`to_metadata` (the ``reduction`` entry of features.parquet's metadata)."""
        try:
            names = list(meta["descriptors"])
            pca = meta["pca"]
            return cls(
                k=int(str(meta["method"]).split(":")[1]),
                descriptors=names,
                components={n: np.asarray(pca[n]["components"], dtype=np.float64) for n in names},
                means={n: np.asarray(pca[n]["mean"], dtype=np.float64) for n in names},
                explained_variance_ratio={n: np.asarray(pca[n]["explained_variance_ratio"]) for n in names},
                scaler_mean=np.asarray(meta["scaler"]["mean"], dtype=np.float64),
                scaler_scale=np.asarray(meta["scaler"]["scale"], dtype=np.float64),
                fitted_on=dict(meta.get("fitted_on") or {}),
                descriptor_params=dict(meta.get("descriptor_params") or {}),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FerdataError(f"the stored reduction is incomplete ({exc!r}); re-run 'ferdata features' with {arg('reduce')}") from None


def fit_reduction(features: dict[str, np.ndarray], k: int, *, fitted_on: dict[str, Any] | None = None,
                  descriptor_params: dict[str, dict[str, Any]] | None = None) -> Reduction:
    """Fit PCA(k) on each descriptor's rows and a StandardScaler on the concatenation."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    names = list(features)
    n = min(len(x) for x in features.values())
    for name, x in features.items():
        if k > min(len(x), x.shape[1]):
            raise FerdataError(
                f"pca:{k} needs at least {k} fitting images and {k} {name} values, have {len(x)} images"
                f" of {x.shape[1]} values; lower K or fit on more images"
            )
    if n < 2:
        raise FerdataError(f"the reduction needs at least 2 fitting images; choose a larger {arg('fit_on')} set")
    components, means, ratios, reduced = {}, {}, {}, []
    for name in names:
        pca = PCA(n_components=k, svd_solver="full").fit(features[name])
        components[name], means[name] = pca.components_.copy(), pca.mean_.copy()
        ratios[name] = pca.explained_variance_ratio_.copy()
        reduced.append((features[name] - means[name]) @ components[name].T)
    scaler = StandardScaler().fit(np.concatenate(reduced, axis=1))
    return Reduction(k=k, descriptors=names, components=components, means=means, explained_variance_ratio=ratios,
                     scaler_mean=scaler.mean_.copy(), scaler_scale=scaler.scale_.copy(),
                     fitted_on=dict(fitted_on or {}), descriptor_params=dict(descriptor_params or {}))
