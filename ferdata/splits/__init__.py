"""Evaluation splits of a manifest: protocols (spi, ppi, sps, loso, kfold, official,
all-train, all-test), class sets, and the leakage audit.

``make_split(manifest, "spi", folds=10)`` writes ``<manifest>/splits/spi-10.parquet``;
``load_split(manifest, "spi-10")`` reads it back for training.

Names resolve on first use (PEP 562), so ``ferdata info`` without ``--split`` does not pay
for importing scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferdata.lazy import lazy_exports

_EXPORTS = {
    "GROUP_COLUMNS": "ferdata.splits.make",
    "ROLES": "ferdata.splits.make",
    "SplitResult": "ferdata.splits.make",
    "list_splits": "ferdata.splits.make",
    "load_split": "ferdata.splits.make",
    "make_split": "ferdata.splits.make",
    "split_metadata": "ferdata.splits.make",
    "split_path": "ferdata.splits.make",
    "PROTOCOLS": "ferdata.splits._registry",
    "SplitProtocol": "ferdata.splits.protocols",
    "create_protocol": "ferdata.splits._registry",
    "get_protocol_class": "ferdata.splits._registry",
    "list_protocols": "ferdata.splits._registry",
    "register_protocol": "ferdata.splits._registry",
}

if TYPE_CHECKING:
    from ferdata.splits.make import (GROUP_COLUMNS, ROLES, SplitResult, list_splits, load_split, make_split,
                                     split_metadata, split_path)
    from ferdata.splits._registry import (PROTOCOLS, create_protocol, get_protocol_class, list_protocols,
                                          register_protocol)
    from ferdata.splits.protocols import SplitProtocol


__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
