"""ferdata's first-party model plugins.

Loaded through the ``ferdata.models`` entry point like any third-party package: importing
this package imports every module in it, and each module registers its models.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
