"""The split-protocol registry (a leaf: protocols import it, it imports none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferdata.registry import Registry

if TYPE_CHECKING:
    from ferdata.splits.protocols import SplitProtocol

PROTOCOLS: Registry[SplitProtocol] = Registry("split protocol", builtins=("ferdata.splits.protocols",),
                                              entry_point_group="ferdata.protocols")
register_protocol = PROTOCOLS.register
list_protocols = PROTOCOLS.list
create_protocol = PROTOCOLS.create
get_protocol_class = PROTOCOLS.get
