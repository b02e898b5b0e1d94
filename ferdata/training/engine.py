"""The training loop: one fold of one split for a torch plugin.

The engine owns devices, mixed precision, data, optimisers, schedules, class weights,
extra losses, early stopping, checkpoints, DistributedDataParallel and the run folder;
the plugin only builds the network and says what is special about training it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferdata import atomic
from ferdata.errors import FerdataError, arg
from ferdata.models import ModelPlugin
from ferdata.progress import NullProgress
from ferdata.training import runs as R
from ferdata.training.data import Examples, FaceDataset, build_augment, decode_all, identity_collate
from ferdata.training.hparams import input_size
from ferdata.training.metrics import classification_metrics, plot_confusion

#: Keep decoded images in memory up to this many bytes (else decode per batch).
CACHE_BYTES = int(os.environ.get("FERDATA_CACHE_BYTES", 4 << 30))


# --- devices and distribution ---------------------------------------------------------


def pick_device(spec: str | None = "auto") -> Any:
    """``auto``: cuda, then mps, then cpu; or exactly what ``--device`` names."""
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            spec = "mps"
        else:
            spec = "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise FerdataError(f"{arg('device')} {spec}: CUDA is not available here; use {arg('device')} cpu or auto")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FerdataError(f"{arg('device')} mps: MPS is not available here; use {arg('device')} cpu or auto")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise FerdataError(f"{arg('device')} {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None


@dataclass
class Dist:
    """Where this process stands under torchrun (world of 1 without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_spec: str | None) -> Dist:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and (device_spec or "auto") in ("auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def broadcast(obj: Any, d: Dist) -> Any:
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# --- model pieces ---------------------------------------------------------------------


def last_linear(model: Any) -> Any:
    from torch import nn

    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


class EmbeddingTap:
    """Captures the input of the model's last linear layer (the embedding center loss pulls)."""

    def __init__(self, model: Any) -> None:
        layer = last_linear(model)
        if layer is None:
            raise FerdataError("center loss needs a model whose classifier is a linear layer")
        self.dim = layer.in_features
        self.value = None
        self.handle = layer.register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, inputs: tuple) -> None:
        self.value = inputs[0]


def split_output(out: Any) -> tuple[Any, Any]:
    """``(logits, embedding or None)``: models may return a tuple (logits, embedding)."""
    if isinstance(out, (tuple, list)):
        return out[0], out[1] if len(out) > 1 else None
    if hasattr(out, "logits"):
        return out.logits, None
    return out, None


def forward(model: Any, batch: tuple, device: Any, with_features: bool) -> Any:
    x = batch[0].to(device, non_blocking=True)
    if with_features:
        return model(x, batch[3].to(device, non_blocking=True))
    return model(x)


def build_optimizer(groups: list[dict], hp: dict[str, Any]) -> Any:
    import torch

    name = str(hp["optimizer"]).lower()
    if name == "sgd":
        return torch.optim.SGD(groups, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                               nesterov=bool(hp["nesterov"]) and hp["momentum"] > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=hp["lr"], weight_decay=hp["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=hp["lr"], weight_decay=hp["weight_decay"])
    raise FerdataError(f"optimizer {name!r}: use sgd, adam or adamw")


def build_schedule(optimizer: Any, hp: dict[str, Any]) -> Any:
    import torch

    name = str(hp["schedule"]).lower()
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=hp["step_size"], gamma=hp["gamma"])
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=hp["epochs"])
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=max(1, hp["patience"] // 2))
    raise FerdataError(f"schedule {name!r}: use none, step, cosine or plateau")


def param_groups(plugin: ModelPlugin, model: Any, hp: dict[str, Any]) -> list[dict]:
    """The plugin's groups (parameters left out are frozen), or every parameter."""
    if plugin.param_groups is None:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    groups = plugin.param_groups(model, **hp)
    chosen = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return [dict(g, params=list(g["params"])) for g in groups]


def freeze_frozen_norms(model: Any) -> None:
    """Batch-norm layers whose parameters are frozen (LLF, last-n blocks) keep their running
    statistics: a frozen layer is not updated in any way."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def build_model(plugin: ModelPlugin, num_classes: int, hp: dict[str, Any]) -> Any:
    try:
        return plugin.build(num_classes, **hp)
    except TypeError as exc:
        raise FerdataError(f"model {plugin.name!r} rejected its hyperparameters ({exc})") from None


def apply_weights(plugin: ModelPlugin, model: Any, weights: str | None) -> dict[str, int] | None:
    """``--weights``: none, imagenet (through the plugin) or a file."""
    from ferdata.training.weights import load_weights

    if weights in (None, "", "none"):
        return None
    if plugin.pretrained is not None:
        result = plugin.pretrained(model, weights)
        return result if isinstance(result, dict) else {"loaded": -1}
    if weights == "imagenet":
        raise FerdataError(f"model {plugin.name!r} has no ImageNet weights; use {arg('weights')} none or a file")
    return load_weights(model, weights)


def init_from_run(model: Any, run: str | os.PathLike, classes: list[str]) -> dict[str, Any]:
    """Start from another run's best checkpoint; a classifier for other classes is replaced."""
    from ferdata.training.weights import load_matching, torch_load

    run_dir = R.open_run(run)
    ckpt_path = run_dir / R.BEST if (run_dir / R.BEST).exists() else run_dir / R.LAST
    if not ckpt_path.exists():
        raise FerdataError(f"{run_dir} has no checkpoint ({R.BEST}); it is not a finished torch run")
    ckpt = torch_load(ckpt_path)
    state = ckpt["model"]
    same = list(ckpt.get("classes", [])) == list(classes)
    if not same:
        head = last_linear(model)
        head_names = {n for n, m in model.named_modules() if m is head}
        state = {k: v for k, v in state.items() if k.rsplit(".", 1)[0] not in head_names}
    info = load_matching(model, state)
    return {"run": str(run_dir), "classifier_replaced": not same, **info}


# --- checkpoints ----------------------------------------------------------------------


def save_checkpoint(path: Path, **state: Any) -> None:
    """Through :mod:`ferdata.atomic`, so a killed run keeps the previous checkpoint and a
    full disk is one line (no fsync per epoch: checkpoints of big models are hundreds of MB)."""
    import torch

    atomic.write_stream(path, lambda fh: torch.save(state, fh), fsync=False)


def checkpoint_bytes(model: Any, groups: list[dict], hp: dict[str, Any]) -> int:
    """About what ``last.pt`` plus ``best.pt`` take: the weights twice, plus the optimizer's
    state in ``last.pt`` — two slots per trained parameter for Adam, one for SGD with
    momentum, none for plain SGD; frozen parameters have none."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    name = str(hp["optimizer"]).lower()
    slots = 2 if name in ("adam", "adamw") else 1 if hp.get("momentum", 0) > 0 else 0
    trained = sum(p.numel() * p.element_size() for g in groups for p in g["params"])
    return 2 * weights + slots * trained


def unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


# --- one fold -------------------------------------------------------------------------


@dataclass
class FoldJob:
    plugin: ModelPlugin
    examples: Examples
    hp: dict[str, Any]
    run_dir: Path
    fold: int
    config: dict[str, Any]
    device: Any
    amp: bool = False
    seed: int = 0
    workers: int = 0
    init_from: str | None = None
    resume: bool = False
    dist: Dist = field(default_factory=Dist)
    progress: Any = None
    on_epoch: Callable[[dict], None] | None = None


def _loader(ds: FaceDataset, batch_size: int, *, shuffle: bool, seed: int, workers: int, dist: Dist | None = None,
            drop_last: bool = False) -> Any:
    import torch
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    sampler = None
    generator = torch.Generator().manual_seed(seed)
    if dist is not None and dist.active:
        sampler = DistributedSampler(ds, num_replicas=dist.world, rank=dist.rank, shuffle=shuffle, seed=seed)
        shuffle = False
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
                      collate_fn=identity_collate, generator=generator, drop_last=drop_last,
                      persistent_workers=workers > 0)


def predict(model: Any, loader: Any, device: Any, *, with_features: bool, amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, softmax probabilities float64) over a loader, in loader order."""
    import torch

    model.eval()
    rows, probs = [], []
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=amp):
        for batch in loader:
            logits, _ = split_output(forward(model, batch, device, with_features))
            probs.append(torch.softmax(logits.float(), dim=1).double().cpu().numpy())
            rows.append(batch[2].numpy())
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0))
    return np.concatenate(rows), np.concatenate(probs)


def _evaluate_loss(model: Any, loader: Any, device: Any, criterion: Any, with_features: bool, amp: bool,
                   soft: Any = None) -> dict[str, float]:
    import torch

    from ferdata.training.losses import soft_cross_entropy

    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=amp):
        for batch in loader:
            logits, _ = split_output(forward(model, batch, device, with_features))
            y = batch[1].to(device)
            if soft is None:
                loss = criterion(logits.float(), y)
            else:
                loss = soft_cross_entropy(logits.float(), soft[batch[2]].to(device))
            loss_sum += float(loss) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
    return {"val_loss": loss_sum / max(total, 1), "val_accuracy": correct / max(total, 1)}


def run_fold(job: FoldJob) -> dict[str, Any]:
    """Train one fold into ``job.run_dir``; returns its metrics (rank 0 writes the files)."""
    import torch
    from torch import nn

    from ferdata.training.losses import soft_cross_entropy

    plugin, ex, hp, device, d = job.plugin, job.examples, job.hp, job.device, job.dist
    progress = job.progress or NullProgress()
    classes = list(ex.classes.classes)
    n_classes = len(classes)
    with_features = bool(plugin.features)
    seed_everything(job.seed)

    train_idx, val_idx = ex.select("train"), ex.select("val")
    if len(train_idx) == 0:
        raise FerdataError(f"fold {job.fold} has no training images (role 'train')")
    # The network and its starting weights first: a missing weights file fails in a second,
    # not after every image is decoded.
    model = build_model(plugin, n_classes, hp)
    weights_info = apply_weights(plugin, model, hp.get("weights"))
    init_info = init_from_run(model, job.init_from, classes) if job.init_from else None
    size, channels = input_size(plugin, hp), plugin.channels
    need = len(ex.files) * channels * size * size
    images = decode_all(ex.files, size, channels, workers=job.workers, progress=progress) if need <= CACHE_BYTES else None
    augment = build_augment(hp["augment"], size)
    make = lambda idx, aug: FaceDataset(ex, idx, size=size, channels=channels, normalize=plugin.normalize,  # noqa: E731
                                        images=images, augment=aug)
    loader_workers = job.workers if images is None else 0
    per_rank_batch = max(1, hp["batch_size"] // d.world)
    # ``repeat``: every epoch passes over the training images that many times, each with fresh
    # augmentation (paper 001 trains on up to 200 distorted copies of every face).
    repeat = max(1, int(hp.get("repeat") or 1))
    epoch_idx = np.tile(train_idx, repeat)
    train_loader = _loader(make(epoch_idx, augment), per_rank_batch, shuffle=True, seed=job.seed,
                           workers=loader_workers, dist=d, drop_last=len(epoch_idx) > per_rank_batch * d.world)
    eval_batch = max(hp["batch_size"], 1)
    val_loader = _loader(make(val_idx, None), eval_batch, shuffle=False, seed=job.seed, workers=loader_workers) \
        if len(val_idx) else None

    model.to(device)
    groups = param_groups(plugin, model, hp)
    if d.main:  # fail now, not after the first epoch, when the checkpoints cannot be written
        atomic.ensure_writable(job.run_dir, needs=checkpoint_bytes(model, groups, hp))

    extra = None
    tap = None
    if plugin.extra_loss is not None or hp["center_loss"]:
        tap = EmbeddingTap(model)
        if plugin.extra_loss is not None:
            extra = plugin.extra_loss(n_classes, tap.dim, **hp)
        else:
            from ferdata.training.losses import center_loss

            extra = center_loss(n_classes, tap.dim, **hp)
        extra.to(device)
        extra_params = [p for p in extra.parameters() if p.requires_grad]
        if extra_params:
            groups.append({"params": extra_params})

    weight = None
    if hp["class_weights"] == "balanced":
        from ferdata.training.data import balanced_class_weights

        weight = torch.tensor(balanced_class_weights(ex.counts("train")), dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    val_criterion = nn.CrossEntropyLoss()
    # Soft targets (a vote distribution): cross-entropy against the distribution, not the label.
    soft = torch.from_numpy(ex.soft) if ex.soft is not None else None
    optimizer = build_optimizer(groups, hp)
    schedule = build_schedule(optimizer, hp)
    scaler = torch.amp.GradScaler("cuda", enabled=job.amp)

    start_epoch, best, bad_epochs = 0, None, 0
    last_path, best_path = job.run_dir / R.LAST, job.run_dir / R.BEST
    if job.resume and last_path.exists():
        from ferdata.training.weights import torch_load

        ckpt = torch_load(last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if schedule is not None and ckpt.get("schedule"):
            schedule.load_state_dict(ckpt["schedule"])
        if extra is not None and ckpt.get("extra_loss"):
            extra.load_state_dict(ckpt["extra_loss"])
        start_epoch, best, bad_epochs = ckpt["epoch"], ckpt.get("best"), ckpt.get("bad_epochs", 0)
        torch.set_rng_state(ckpt["rng"])

    pretrain_metrics = None
    if plugin.pretrain is not None and start_epoch == 0:
        pretrain_metrics = plugin.pretrain(unwrap(model), train_loader, device, **hp) or {}
        if d.main:
            R.append_history(job.run_dir, {"phase": "pretrain", **pretrain_metrics})

    net = model
    if d.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    monitor = hp["monitor"]
    sign = 1.0 if monitor == "val_loss" else -1.0
    patience = hp["patience"]
    stopped_early = False
    if d.main:
        R.write_json(job.run_dir / R.CONFIG, {**job.config, "weights_loaded": weights_info, "init_from": init_info,
                                               "pretrain": pretrain_metrics})
    epochs_done = start_epoch
    for epoch in range(start_epoch, hp["epochs"]):
        if d.active:
            train_loader.sampler.set_epoch(epoch)
        else:
            train_loader.generator.manual_seed(job.seed + epoch)  # the same shuffle when resumed
        net.train()
        freeze_frozen_norms(net)
        if extra is not None:
            extra.train()
        progress.start(f"fold {job.fold} epoch {epoch + 1}/{hp['epochs']}", len(train_loader))
        t0 = time.perf_counter()
        seen, correct, loss_sum = 0, 0, 0.0
        for batch in train_loader:
            y = batch[1].to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, enabled=job.amp):
                logits, emb = split_output(forward(net, batch, device, with_features))
                if soft is None:
                    loss = criterion(logits.float(), y)
                else:
                    loss = soft_cross_entropy(logits.float(), soft[batch[2]].to(device, non_blocking=True), weight)
                if extra is not None:
                    emb = emb if emb is not None else tap.value
                    loss = loss + extra(emb.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if hp["grad_clip"] > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], hp["grad_clip"])
            scaler.step(optimizer)
            scaler.update()
            n = len(y)
            seen += n
            loss_sum += float(loss.detach()) * n
            correct += int((logits.detach().argmax(1) == y).sum())
            progress.advance(1)
        progress.finish()
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"epoch": epoch + 1, "fold": job.fold, "train_loss": loss_sum / max(seen, 1),
                               "train_accuracy": correct / max(seen, 1), "seconds": seconds,
                               "images_per_s": seen * d.world / seconds if seconds > 0 else None,
                               "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            row.update(_evaluate_loss(unwrap(net), val_loader, device, val_criterion, with_features, job.amp, soft))
        if plugin.epoch_end is not None:
            row.update(plugin.epoch_end(unwrap(net), epoch, **hp) or {})
        if schedule is not None:
            if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                schedule.step(row.get("val_loss", row["train_loss"]))
            else:
                schedule.step()
        improved = False
        if val_loader is not None:
            score = sign * row[monitor]
            improved = best is None or score < best
            if improved:
                best, bad_epochs = score, 0
            else:
                bad_epochs += 1
        row["best"] = improved
        state = {"model": unwrap(net).state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict() if schedule is not None else None,
                 "extra_loss": extra.state_dict() if extra is not None else None,
                 "epoch": epoch + 1, "best": best, "bad_epochs": bad_epochs, "classes": classes,
                 "plugin": plugin.name, "rng": torch.get_rng_state()}
        if d.main:
            R.append_history(job.run_dir, row)
            save_checkpoint(last_path, **state)
            if improved or val_loader is None:
                save_checkpoint(best_path, **{k: state[k] for k in ("model", "epoch", "classes", "plugin")})
        epochs_done = epoch + 1
        if job.on_epoch is not None and d.main:
            job.on_epoch({**row, "epochs": hp["epochs"]})  # the total, for an ETA
        if val_loader is not None and patience > 0 and bad_epochs >= patience:
            stopped_early = True
            break

    if tap is not None:
        tap.handle.remove()
    if d.active:
        import torch.distributed as dist

        dist.barrier()
    # Predict every role with the best weights (the last ones when there is no val role).
    from ferdata.training.weights import torch_load

    if best_path.exists():
        unwrap(net).load_state_dict(torch_load(best_path)["model"])
    all_idx = np.arange(len(ex.image_ids))
    all_loader = _loader(make(all_idx, None), eval_batch, shuffle=False, seed=job.seed, workers=loader_workers)
    rows, probs = predict(unwrap(net), all_loader, device, with_features=with_features, amp=job.amp)
    order = np.argsort(rows)
    rows, probs = rows[order], probs[order]
    history = R.read_history(job.run_dir) if d.main else []
    extra_info = {"epochs_run": epochs_done, "stopped_early": stopped_early,
                  "best_epoch": _best_epoch(history), "train_seconds": sum(h.get("seconds", 0) for h in history)}
    return finish_fold(job.run_dir, ex, job.fold, rows, probs, classes, main=d.main, extra=extra_info)


def _best_epoch(history: list[dict]) -> int | None:
    best = [h["epoch"] for h in history if h.get("best")]
    return best[-1] if best else None


def finish_fold(run_dir: Path, ex: Examples, fold: int, rows: np.ndarray, probs: np.ndarray, classes: list[str],
                *, main: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write predictions.parquet, metrics.json and the confusion PNG of one fold."""
    roles = [ex.roles[r] for r in rows]
    targets = ex.targets[rows]
    metrics: dict[str, Any] = {"fold": fold, "classes": classes, **(extra or {}),
                               "excluded": ex.excluded, "source": ex.source}
    for role in ("train", "val", "test"):
        sel = np.array([r == role for r in roles], bool)
        if sel.any():
            metrics[role] = classification_metrics(targets[sel], probs[sel], classes)
    if main:
        table = R.predictions_table([ex.image_ids[r] for r in rows], [fold] * len(rows), roles, targets, probs, classes)
        R.write_predictions(run_dir / R.PREDICTIONS, table, classes)
        R.write_json(run_dir / R.METRICS, metrics)
        shown = "test" if "test" in metrics else "val" if "val" in metrics else "train"
        plot_confusion(metrics[shown]["confusion"], metrics[shown]["confusion_normalized"], classes,
                       run_dir / R.CONFUSION_PNG, f"{shown} fold {fold}")
    return metrics
