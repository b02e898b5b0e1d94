"""Paper 000's convolutional autoencoder with a one-hidden-layer classifier (``cae-mlp``).

Phase 1 (the ``pretrain`` hook, before the engine's supervised loop): a convolutional
autoencoder learns to reconstruct the training images with an MSE loss and SGD. The
encoder is three convolutions, each followed by batch norm, LeakyReLU and a max pool;
the decoder mirrors it with max unpooling (using the pool indices) and transposed
convolutions. The paper's last layer is a ReLU because its images are 0–255; ferdata's
inputs are scaled to [-1, 1], so the last layer here is a tanh. The paper trains the
autoencoder on the whole of SFEW for 100 epochs; here it sees the training role only, so
no test image leaks into the features.

Phase 2 (the engine's loop): the encoder is frozen and its flattened bottleneck feeds a
fully connected network with one hidden layer of 64 tanh units, trained with
cross-entropy and Adam. The bottleneck vector is standardised with the running statistics
of the training samples (the paper does not say; without it the non-negative maps give
every hidden unit a large constant offset, which makes all units look alike to the
pruning below). The ``regularizer`` hyperparameter picks the paper's comparison
(Table 2: none 41.73%, weight decay 43.51%, pruning 43.18%, dropout 32.84% under PPI):

* ``weight-decay`` — L2 with λ = ``weight_decay`` (paper: 0.001) on the classifier;
* ``prune`` — distinctiveness pruning (Gedeon & Harris, 1991) in the ``epoch_end`` hook:
  the functionality of a hidden unit is its vector of tanh outputs over the most recent
  training samples; a pair closer than 15° is redundant (one unit is removed and its
  outgoing weights are added to the other's), a pair farther than 165° is complementary
  (both are removed and their mean contribution goes into the output bias). Removed units
  are masked to zero (a buffer, so checkpoints keep it) and their weights zeroed, which
  leaves the optimizer's parameters untouched;
* ``dropout`` — 50% dropout on the hidden units;
* ``none`` — the unregularised baseline.

Geometry: the paper's frames (720×576, kernel 20, stride 2) give a 256×3×5 bottleneck
(3840 inputs to the classifier); with ferdata's 128-px crops and the scaled kernel of
``cnn-base`` it is 256×2×2 (1024 inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin, register_model
from ferdata_plugins.layers import RunningStandardize

INPUT_SIZE = 128
CHANNELS = 3
FILTERS = (64, 128, 256)
REGULARIZERS = ("weight-decay", "prune", "dropout", "none")

DEFAULTS: dict[str, Any] = {
    # supervised phase: the one-hidden-layer classifier
    "optimizer": "adam",  # paper: weight decay "in the Adam optimizer"
    "lr": 1e-3,  # not given in the paper
    "weight_decay": 1e-3,  # paper: L2 λ = 0.001 (used when regularizer is weight-decay)
    "epochs": 100,  # not given in the paper
    "batch_size": 32,  # not given in the paper
    "schedule": "none",
    "augment": "none",  # the paper mentions no augmentation
    "regularizer": "weight-decay",
    "hidden": 64,  # paper
    "dropout": 0.5,  # paper: 50% (used when regularizer is dropout)
    "prune_similar_deg": 15.0,  # paper
    "prune_complementary_deg": 165.0,  # paper
    "prune_after": 10,  # epochs before the first pruning; not given in the paper
    "prune_samples": 256,  # recent training samples that define a unit's functionality
    "prune_min_samples": 16,
    "prune_min_units": 2,
    # unsupervised phase: the autoencoder
    "pretrain_epochs": 100,  # paper
    "pretrain_lr": 0.01,  # paper: SGD; rate not given
    "pretrain_momentum": 0.9,  # not given in the paper
    "freeze_encoder": True,  # paper: the classifier reads fixed bottleneck features
    "kernel_size": 5,  # paper: 20 on 720×576 frames, scaled to 128 px crops
    "stride": 2,  # paper
    "negative_slope": 0.01,  # paper's CNN
}


def _unwrap(model: nn.Module) -> "CaeMlp":
    """The plugin's module inside DistributedDataParallel (or any ``.module`` wrapper)."""
    while not isinstance(model, CaeMlp) and hasattr(model, "module"):
        model = model.module
    if not isinstance(model, CaeMlp):
        raise TypeError(f"expected a cae-mlp model, got {type(model).__name__}")
    return model


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class ConvAutoencoder(nn.Module):
    def __init__(self, channels: int, kernel_size: int, stride: int, negative_slope: float) -> None:
        super().__init__()
        self.enc = nn.ModuleList()
        c_in = channels
        for c_out in FILTERS:
            self.enc.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size, stride=stride),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(negative_slope),
            ))
            c_in = c_out
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        outs = (*reversed(FILTERS[:-1]), channels)
        self.dec = nn.ModuleList()
        self.dec_act = nn.ModuleList()
        for i, c_out in enumerate(outs):
            self.dec.append(nn.ConvTranspose2d(c_in, c_out, kernel_size, stride=stride))
            last = i == len(outs) - 1
            self.dec_act.append(nn.Tanh() if last else nn.Sequential(nn.BatchNorm2d(c_out), nn.LeakyReLU(negative_slope)))
            c_in = c_out

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Bottleneck maps, and what the decoder needs to undo each stage."""
        trace = []
        for conv in self.enc:
            size_in = x.shape[-2:]
            x = conv(x)
            size_pool = x.shape[-2:]
            x, idx = self.pool(x)
            trace.append((size_in, size_pool, idx))
        return x, trace

    def decode(self, z: torch.Tensor, trace: list) -> torch.Tensor:
        for deconv, act, (size_in, size_pool, idx) in zip(self.dec, self.dec_act, reversed(trace)):
            z = self.unpool(z, idx, output_size=size_pool)
            z = act(deconv(z, output_size=size_in))
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, trace = self.encode(x)
        return self.decode(z, trace)


class CaeMlp(nn.Module):
    def __init__(
        self,
        num_classes: int,
        channels: int = CHANNELS,
        input_size: int = INPUT_SIZE,
        kernel_size: int = 5,
        stride: int = 2,
        negative_slope: float = 0.01,
        hidden: int = 64,
        regularizer: str = "weight-decay",
        dropout: float = 0.5,
        freeze_encoder: bool = True,
        prune_samples: int = 256,
    ) -> None:
        super().__init__()
        self.autoencoder = ConvAutoencoder(channels, kernel_size, stride, negative_slope)
        with torch.no_grad():
            try:
                z, _ = self.autoencoder.eval().encode(torch.zeros(1, channels, input_size, input_size))
            except RuntimeError:
                z = torch.zeros(0)
        self.autoencoder.train()
        if z.numel() == 0:
            raise FerdataError(f"cae-mlp: input size {input_size} is too small for kernel_size={kernel_size}, "
                               f"stride={stride}; use a smaller kernel or stride")
        self.regularizer = regularizer
        self.freeze_encoder = freeze_encoder
        self.prune_samples = prune_samples
        self.standardise = RunningStandardize(z.numel())
        self.hidden = nn.Linear(z.numel(), hidden)
        self.dropout = nn.Dropout(dropout if regularizer == "dropout" else 0.0)
        self.out = nn.Linear(hidden, num_classes)
        self.register_buffer("unit_mask", torch.ones(hidden))
        self.feature_dim = hidden
        self._recent: list[torch.Tensor] = []
        self.set_autoencoder_trainable(False)

    def set_autoencoder_trainable(self, pretraining: bool) -> None:
        """While pretraining everything in the autoencoder learns; afterwards the decoder is
        frozen, and the encoder too unless ``freeze_encoder`` is off."""
        for p in self.autoencoder.enc.parameters():
            p.requires_grad_(pretraining or not self.freeze_encoder)
        for p in [*self.autoencoder.dec.parameters(), *self.autoencoder.dec_act.parameters()]:
            p.requires_grad_(pretraining)

    def train(self, mode: bool = True) -> "CaeMlp":
        super().train(mode)
        if self.freeze_encoder:
            self.autoencoder.eval()  # frozen features: batch-norm statistics stay as pretrained
        return self

    def active_units(self) -> int:
        return int(self.unit_mask.sum().item())

    def forward(self, images: torch.Tensor, return_features: bool = False) -> Any:
        if self.freeze_encoder:
            with torch.no_grad():
                z, _ = self.autoencoder.encode(images)
        else:
            z, _ = self.autoencoder.encode(images)
        h = torch.tanh(self.hidden(self.standardise(torch.flatten(z, 1)))) * self.unit_mask
        if self.training and self.regularizer == "prune":
            self._remember(h.detach())
        scores = self.out(self.dropout(h))
        return (scores, h) if return_features else scores

    def _remember(self, h: torch.Tensor) -> None:
        self._recent.append(h.float())
        while sum(len(t) for t in self._recent) - len(self._recent[0]) >= self.prune_samples:
            self._recent.pop(0)

    def take_recent_activations(self) -> torch.Tensor | None:
        """Hidden outputs of the most recent training samples (cleared once taken)."""
        if not self._recent:
            return None
        acts = torch.cat(self._recent)[-self.prune_samples:]
        self._recent.clear()
        return acts

    @torch.no_grad()
    def prune_by_distinctiveness(
        self, acts: torch.Tensor, similar_deg: float = 15.0, complementary_deg: float = 165.0, min_units: int = 2
    ) -> int:
        """Remove redundant and complementary hidden units (Gedeon & Harris); returns how
        many were removed. ``acts`` is (samples, hidden) of tanh outputs."""
        active = [int(i) for i in torch.nonzero(self.unit_mask).flatten()]
        a = acts[:, active].to(self.out.weight.device, torch.float32)
        norms = a.norm(dim=0)
        usable = norms > 1e-8
        cos = (a.T @ a) / (norms[:, None] * norms[None, :]).clamp_min(1e-12)
        angles = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
        mean_act = a.mean(0)
        pairs = []
        for p in range(len(active)):
            for q in range(p + 1, len(active)):
                if not (usable[p] and usable[q]):
                    continue
                ang = float(angles[p, q])
                if ang < similar_deg:
                    pairs.append((ang, p, q, "similar"))
                elif ang > complementary_deg:
                    pairs.append((180.0 - ang, p, q, "complementary"))
        pairs.sort()  # most extreme first
        removed: set[int] = set()
        remaining = len(active)
        w_out = self.out.weight
        for _, p, q, kind in pairs:
            if p in removed or q in removed:
                continue
            i, j = active[p], active[q]
            if kind == "similar":
                if remaining - 1 < min_units:
                    continue
                w_out[:, i] += w_out[:, j]  # h_j ≈ h_i, so w_j·h_j ≈ w_j·h_i
                removed.add(q)
                self._remove_unit(j)
                remaining -= 1
            else:
                if remaining - 2 < min_units:
                    continue
                self.out.bias += w_out[:, i] * mean_act[p] + w_out[:, j] * mean_act[q]
                removed.update((p, q))
                self._remove_unit(i)
                self._remove_unit(j)
                remaining -= 2
        return len(removed)

    def _remove_unit(self, u: int) -> None:
        self.unit_mask[u] = 0.0
        self.hidden.weight[u].zero_()
        self.hidden.bias[u] = 0.0
        self.out.weight[:, u] = 0.0


def _images_of(batch: Any) -> torch.Tensor:
    """The image tensor of a loader batch: the batch itself, its first item, or ``["image"]``."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        for key in ("image", "images", "x"):
            if key in batch:
                return batch[key]
        raise TypeError(f"no image tensor in batch keys {sorted(batch)}")
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise TypeError(f"cannot find the images in a batch of type {type(batch).__name__}")


def _sync_grads(params: Iterable[nn.Parameter]) -> None:
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


def _broadcast_state(module: nn.Module) -> None:
    for t in [*module.parameters(), *module.buffers()]:
        torch.distributed.broadcast(t.data, src=0)


def pretrain(model: nn.Module, train_loader: Iterable, device: Any, **hp: Any) -> dict:
    """Train the autoencoder to reconstruct the training images (MSE, SGD with momentum).

    Returns the mean reconstruction loss of the first and last epochs.
    """
    m = _unwrap(model)
    epochs = int(hp.get("pretrain_epochs", DEFAULTS["pretrain_epochs"]))
    ae = m.autoencoder
    m.set_autoencoder_trainable(True)
    params = [p for p in ae.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=float(hp.get("pretrain_lr", DEFAULTS["pretrain_lr"])),
                          momentum=float(hp.get("pretrain_momentum", DEFAULTS["pretrain_momentum"])))
    dist = _distributed()
    losses: list[float] = []
    ae.train()
    try:
        for _ in range(epochs):
            total, n = 0.0, 0
            for batch in train_loader:
                x = _images_of(batch).to(device, non_blocking=True).float()
                loss = F.mse_loss(ae(x), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if dist:
                    _sync_grads(params)
                opt.step()
                total += float(loss.detach()) * len(x)
                n += len(x)
            losses.append(total / max(n, 1))
    finally:
        m.set_autoencoder_trainable(False)
        if dist:
            _broadcast_state(ae)
        m.train(m.training)
    metrics: dict[str, float] = {"pretrain_epochs": float(epochs)}
    if losses:
        metrics.update(reconstruction_loss_first=losses[0], reconstruction_loss_last=losses[-1])
    return metrics


def epoch_end(model: nn.Module, epoch: int, **hp: Any) -> dict:
    """Distinctiveness pruning after each epoch from ``prune_after`` on (``prune`` only)."""
    m = _unwrap(model)
    if m.regularizer != "prune":
        return {}
    metrics: dict[str, float] = {"pruned": 0.0}
    acts = m.take_recent_activations()
    if epoch >= int(hp.get("prune_after", DEFAULTS["prune_after"])):
        if acts is not None and len(acts) >= int(hp.get("prune_min_samples", DEFAULTS["prune_min_samples"])):
            metrics["pruned"] = float(m.prune_by_distinctiveness(
                acts,
                similar_deg=float(hp.get("prune_similar_deg", DEFAULTS["prune_similar_deg"])),
                complementary_deg=float(hp.get("prune_complementary_deg", DEFAULTS["prune_complementary_deg"])),
                min_units=int(hp.get("prune_min_units", DEFAULTS["prune_min_units"])),
            ))
        if _distributed():  # every rank saw other samples: rank 0's network wins, on every rank
            for t in (m.unit_mask, m.hidden.weight, m.hidden.bias, m.out.weight, m.out.bias):
                torch.distributed.broadcast(t.data, src=0)
    metrics["hidden_units"] = float(m.active_units())
    return metrics


def param_groups(model: nn.Module, **hp: Any) -> list[dict]:
    """The classifier (and the encoder when not frozen); weight decay only for the
    ``weight-decay`` regularizer."""
    m = _unwrap(model)
    decay = float(hp.get("weight_decay", DEFAULTS["weight_decay"])) if m.regularizer == "weight-decay" else 0.0
    groups = [{"params": [*m.hidden.parameters(), *m.out.parameters()], "weight_decay": decay}]
    if not m.freeze_encoder:
        groups.append({"params": list(m.autoencoder.enc.parameters()), "weight_decay": 0.0})
    return groups


def build(num_classes: int, **hp: Any) -> CaeMlp:
    regularizer = str(hp.get("regularizer", DEFAULTS["regularizer"]))
    if regularizer not in REGULARIZERS:
        raise FerdataError(f"cae-mlp: unknown regularizer {regularizer!r}; choose from {', '.join(REGULARIZERS)}")
    for key in ("prune_similar_deg", "prune_complementary_deg"):
        deg = float(hp.get(key, DEFAULTS[key]))
        if not 0.0 <= deg <= 180.0 or math.isnan(deg):
            raise FerdataError(f"cae-mlp: {key} must be an angle between 0 and 180 degrees, got {deg}")
    return CaeMlp(
        num_classes,
        kernel_size=int(hp.get("kernel_size", DEFAULTS["kernel_size"])),
        stride=int(hp.get("stride", DEFAULTS["stride"])),
        negative_slope=float(hp.get("negative_slope", DEFAULTS["negative_slope"])),
        hidden=int(hp.get("hidden", DEFAULTS["hidden"])),
        regularizer=regularizer,
        dropout=float(hp.get("dropout", DEFAULTS["dropout"])),
        freeze_encoder=bool(hp.get("freeze_encoder", DEFAULTS["freeze_encoder"])),
        prune_samples=int(hp.get("prune_samples", DEFAULTS["prune_samples"])),
    )


CAE_MLP = register_model(
    ModelPlugin(
        name="cae-mlp",
        description="conv autoencoder (pretrained) + 1-hidden-layer tanh MLP; regularizer weight-decay|prune|dropout|none",
        paper="000",
        input_size=INPUT_SIZE,
        channels=CHANNELS,
        build=build,
        defaults=dict(DEFAULTS),
        param_groups=param_groups,
        pretrain=pretrain,
        epoch_end=epoch_end,
        tags=("sfew", "autoencoder"),
    )
)
