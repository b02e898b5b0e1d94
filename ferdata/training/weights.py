"""Starting weights: torchvision's ImageNet files (offline first), a weights file, or another run.

torchvision looks for ``$TORCH_HOME/hub/checkpoints/<file>`` before downloading but does
not re-check the hash of a file already there, so :func:`imagenet_state_dict` checks the
sha256 prefix torchvision puts in the file name itself before trusting it. Everything is
loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ferdata.errors import FerdataError, arg
from ferdata.training.data import file_sha256

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def torch_load(path: str | os.PathLike) -> Any:
    """``torch.load`` restricted to tensors and plain containers (never arbitrary pickles)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FerdataError(f"weights file {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - corrupt or unsafe pickles must not crash with a traceback
        raise FerdataError(f"{path} is not a loadable weights file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def hub_checkpoints_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_file(weights: Any) -> Path:
    """Where torchvision keeps (and looks for) the file of a weights enum member."""
    return hub_checkpoints_dir() / os.path.basename(weights.url)


def verify_hash_prefix(path: Path) -> None:
    m = _HASH_IN_NAME.search(path.name)
    if m is None:
        return
    expected = m.group(1)
    if not file_sha256(path).startswith(expected):
        raise FerdataError(
            f"{path} does not match the sha256 prefix {expected} in its name (corrupt or not torchvision's file); "
            "delete it and download it again"
        )


def imagenet_state_dict(weights: Any) -> dict:
    """The state dict of a torchvision weights enum member, from the cache when it is there.

    A missing file is downloaded when there is a network (torchvision checks its hash);
    without one, the error names the file and the folder to put it in.
    """
    path = imagenet_file(weights)
    if not path.exists():
        if os.environ.get("FERDATA_OFFLINE"):
            raise _missing(weights, path, "offline")
        import socket

        import torch

        import contextlib
        import io

        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(15)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # torch.hub prints "Downloading: ..."
                torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - no network, proxy, DNS: one line with the fix
            raise _missing(weights, path, type(exc).__name__) from None
        finally:
            socket.setdefaulttimeout(previous)
    verify_hash_prefix(path)
    return torch_load(path)


def _missing(weights: Any, path: Path, why: str) -> FerdataError:
    return FerdataError(
        f"ImageNet weights {path.name} are not in {path.parent} and cannot be downloaded ({why}); "
        f"download {weights.url} and put it there (or set TORCH_HOME), or use {arg('weights')} none"
    )


def unwrap_state_dict(obj: Any) -> dict:
    """A plain state dict from a weights file: a run checkpoint, ``{"state_dict": ...}`` or itself."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return unwrap_state_dict(obj[key])
        return {k.removeprefix("module."): v for k, v in obj.items() if hasattr(v, "shape")}
    raise FerdataError("weights file holds no state dict")


def load_matching(model: Any, state: dict) -> dict[str, int]:
    """Load every tensor whose name and shape match; the rest (a new classifier) keeps its init.

    Returns counts of loaded, skipped (shape differs) and missing tensors, so callers can
    tell a wrong file (nothing loaded) from a replaced head.
    """
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    skipped = [k for k in state if k in own and k not in usable]
    if not usable:
        raise FerdataError("the weights file shares no tensors with this model; is it for another architecture?")
    model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "shape_mismatch": len(skipped), "missing": len(set(own) - set(usable))}


def load_weights(model: Any, weights: str | os.PathLike, imagenet: Any = None) -> dict[str, int]:
    """``imagenet`` (through the torchvision enum member ``imagenet``) or a file path."""
    if str(weights) == "imagenet":
        if imagenet is None:
            raise FerdataError(f"this model has no ImageNet weights; use {arg('weights')} none or a file")
        return load_matching(model, imagenet_state_dict(imagenet))
    return load_matching(model, unwrap_state_dict(torch_load(weights)))


def describe_start(config: dict[str, Any]) -> str:
    """The weights a run started from, in words, for its summary and report: ImageNet (and
    how many tensors loaded), a file, another run, or "from scratch"."""
    kind = config.get("kind")
    if kind == "sklearn":
        return "from scratch (a scikit-learn estimator)"
    if kind == "ensemble":
        return "its member runs"
    init = config.get("init_from")
    if isinstance(init, dict) and init.get("run"):
        return f"run {init['run']} (--init-from, {init.get('loaded', '?')} tensors loaded)"
    if isinstance(init, str) and init:
        return f"run {init} (--init-from)"
    weights = str((config.get("hparams") or {}).get("weights") or "none")
    loaded = (config.get("weights_loaded") or {}).get("loaded")
    tensors = f", {loaded} tensors loaded" if isinstance(loaded, int) and loaded > 0 else ""
    if weights == "none":
        return "from scratch (random initialisation, --weights none)"
    if weights == "imagenet":
        return f"ImageNet (--weights imagenet{tensors})"
    return f"{weights} (--weights{tensors})"
