"""The descriptor registry (a leaf: descriptors import it, it imports no descriptor)."""

from __future__ import annotations

from ferdata.features.base import Descriptor
from ferdata.registry import Registry

DESCRIPTORS: Registry[Descriptor] = Registry(
    "descriptor",
    builtins=(
        "ferdata.features.descriptors",
    ),
    entry_point_group="ferdata.descriptors",
)
register_descriptor = DESCRIPTORS.register
list_descriptors = DESCRIPTORS.list
create_descriptor = DESCRIPTORS.create
