"""Install a fake third-party distribution (a dist-info with entry points, on a folder put on
``PYTHONPATH``), the way pip would leave it, for the plugin tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install_distribution(site: Path, dist: str, modules: Mapping[str, str],
                         entry_points: Mapping[str, Mapping[str, str]]) -> Path:
    """Write ``modules`` (name → source) and ``<dist>-0.1.dist-info`` with ``entry_points``
    (group → {name: value}) under ``site``; returns ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()))
    return site


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m ferdata`` subprocess that sees ``site``, with
    third-party plugins on (the suite turns them off for itself)."""
    env = {k: v for k, v in os.environ.items() if k != "FERDATA_NO_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), str(site)])
    env["COLUMNS"] = "200"
    env.update(extra)
    return env
