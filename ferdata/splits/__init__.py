"""Evaluation splits of a manifest: protocols (spi, ppi, sps, loso, kfold, official,
all-train, all-test), class sets, and the leakage audit.

``make_split(manifest, "spi", folds=10)`` writes ``<manifest>/splits/spi-10.parquet``;
``load_split(manifest, "spi-10")`` reads it back for training.
"""

from ferdata.splits.make import (
    GROUP_COLUMNS,
    ROLES,
    SplitResult,
    list_splits,
    load_split,
    make_split,
    split_metadata,
    split_path,
)
from ferdata.splits.protocols import (
    PROTOCOLS,
    SplitProtocol,
    create_protocol,
    get_protocol_class,
    list_protocols,
    register_protocol,
)

__all__ = ["GROUP_COLUMNS", "PROTOCOLS", "ROLES", "SplitProtocol", "SplitResult", "create_protocol",
           "get_protocol_class", "list_protocols", "list_splits", "load_split", "make_split",
           "register_protocol", "split_metadata", "split_path"]
