"""Dataset adapters: one registry, one module per dataset; more from the
``ferdata.datasets`` entry-point group."""

from __future__ import annotations

from pathlib import Path

from ferdata.datasets._registry import DATASETS, create_dataset, get_dataset_class, list_datasets, register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan
from ferdata.errors import FerdataError


def detect_dataset(source: Path) -> str:
    """The one adapter whose layout ``source`` matches (``folder`` is the last resort)."""
    matches = [n for n in list_datasets() if n != "folder" and get_dataset_class(n).detect(source)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise FerdataError(f"{source} looks like several datasets ({', '.join(matches)}); name one with --dataset")
    if get_dataset_class("folder").detect(source):
        return "folder"
    raise FerdataError(
        f"{source} matches no known layout; name the dataset with --dataset "
        f"({', '.join(list_datasets())}) — see 'ferdata ingest --list'"
    )


__all__ = ["DATASETS", "DatasetAdapter", "Entry", "Scan", "create_dataset", "detect_dataset",
           "get_dataset_class", "list_datasets", "register_dataset"]
