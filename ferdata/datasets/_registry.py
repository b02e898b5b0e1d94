"""The dataset-adapter registry (a leaf: adapters import it, it imports no adapter)."""

from __future__ import annotations

from ferdata.datasets.base import DatasetAdapter
from ferdata.registry import Registry

DATASETS: Registry[DatasetAdapter] = Registry(
    "dataset",
    builtins=(
        "ferdata.datasets.affectnet",
        "ferdata.datasets.ckplus",
        "ferdata.datasets.fer2013",
        "ferdata.datasets.ferplus",
        "ferdata.datasets.folder",
        "ferdata.datasets.jaffe",
        "ferdata.datasets.sfew",
    ),
    entry_point_group="ferdata.datasets",
)
register_dataset = DATASETS.register
list_datasets = DATASETS.list
create_dataset = DATASETS.create
get_dataset_class = DATASETS.get
