"""Model plugins: what a model declares so the training engine can run it.

A plugin is a :class:`ModelPlugin` registered under one or more names. First-party
plugins live in ``plugins/ferdata_plugins`` and third-party ones in any installed package;
both are found the same way, through the ``ferdata.models`` entry-point group: an entry
point names a module (importing it registers its plugins) or a callable (called once).

The engine owns the loop, devices, checkpoints and metrics; a plugin only says how to
build its model and what is special about training it.

Hyperparameter vocabulary
-------------------------
``defaults`` (and the command line over them) use these plain names, shared by every
plugin and the engine; ``create_model`` passes all of them to ``build``, so a ``build``
takes ``**hparams`` and ignores the names it does not use.

==================== ==================================================================
``optimizer``        ``"sgd"`` or ``"adam"``
``lr``               initial learning rate
``momentum``         SGD momentum (0 = plain SGD)
``nesterov``         SGD with Nesterov momentum (bool)
``weight_decay``     L2 penalty passed to the optimizer
``epochs``           supervised epochs
``batch_size``       mini-batch size
``scheduler``        ``"step"`` (multiply the lr by ``lr_decay`` every ``lr_decay_every``
                     epochs), ``"plateau"`` (multiply by ``lr_decay`` when the validation
                     loss has not improved for ``lr_patience`` epochs) or ``None``
``lr_decay``         the factor of either schedule (paper 001: 0.94)
``lr_decay_every``   epochs between step decays (paper 001: 15)
``lr_patience``      epochs without improvement before a plateau decay
``dropout``          dropout probability of the model's classifier
``center_loss``      add ``extra_loss`` to the classification loss (bool, ``--center-loss``)
``center_loss_weight`` λ, the weight of the extra loss (paper 001: 0.001)
``center_loss_alpha``  α, the learning rate of the class centres (paper 001: 0.001)
``seed``             random seed (also for scikit-learn estimators)
==================== ==================================================================

A plugin may add its own names (``regularizer``, ``ae_epochs``, ``width_mult`` ...); its
description or module docstring says what they mean.

Conventions between plugins and the engine
-------------------------------------------
* ``forward`` returns class scores of shape ``(batch, num_classes)``: logits, or
  log-probabilities (paper 000's log-softmax + NLL; log-softmax is idempotent, so
  cross-entropy on them equals NLL). Probabilities are ``softmax`` of either.
* Penultimate features (for center loss): ``model(x, return_features=True)`` returns
  ``(scores, features)`` with ``features`` of shape ``(batch, model.feature_dim)``, the
  vector the final classification layer reads (after global pooling, before dropout).
  First-party models implement it; for others the engine may hook the classifier's input.
* Feature inputs: a model with ``features`` gets one float32 tensor ``(batch, D)``, the
  named vectors concatenated in order, after the images: ``model(images, features)``.
  ``input_size == 0`` (and ``channels == 0``) means the model takes no image at all: the
  engine loads no pixels and calls ``model(features)``; a ``sklearn`` model gets the same
  matrix as ``X`` in ``fit(X, y)`` / ``predict_proba(X)`` (columns follow ``classes_``).
  Known vectors are listed in :data:`FEATURE_VECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from ferdata.errors import FerdataError
from ferdata.registry import Registry

ENTRY_POINT_GROUP = "ferdata.models"


@dataclass(frozen=True)
class ModelPlugin:
    name: str
    """The CLI name (``resnet18-alf``)."""
    description: str
    paper: str | None
    """Which of the papers in ``shared/papers`` it comes from (``"002"``), if any."""
    input_size: int
    """Side of the square input in pixels; 0 for a model that reads no image."""
    channels: int
    """1 (grey) or 3 (RGB); 0 for a model that reads no image."""
    build: Callable[..., Any]
    """``build(num_classes, **hparams)`` → a ``torch.nn.Module`` (kind ``torch``) or an
    estimator with ``fit``/``predict_proba`` (kind ``sklearn``)."""
    kind: Literal["torch", "sklearn", "ensemble"] = "torch"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Default hyperparameters in the shared vocabulary of this module's docstring
    (optimizer, lr, momentum, weight_decay, epochs, batch_size, scheduler, lr_decay,
    lr_decay_every, dropout, ...); command-line options override them."""
    param_groups: Callable[..., list[dict]] | None = None
    """``param_groups(model, **hparams)`` → optimizer groups (``{"params": [...]}``, a group
    may carry its own ``lr`` / ``weight_decay``, which win over the global ones); parameters
    left out are frozen (LLF, last-n-blocks, the pretrained encoder of ``cae-mlp``)."""
    extra_loss: Callable[..., Any] | None = None
    """``extra_loss(num_classes, feature_dim, **hparams)`` → a module whose forward takes
    (features, targets) and returns a scalar (center loss), already weighted by
    ``center_loss_weight``. The engine builds it only when ``center_loss`` is true, gets the
    features from ``model(x, return_features=True)`` (``feature_dim`` is
    ``model.feature_dim``), adds the term to the classification loss, and trains the
    module's own parameters (the class centres) as its implementation says."""
    features: tuple[str, ...] = ()
    """Extra per-image vectors the model consumes, by name in :data:`FEATURE_VECTORS`
    (``("lpqphog",)``); passed to ``forward`` after the images."""
    pretrained: Callable[..., None] | None = None
    """``pretrained(model, weights)`` loads ``imagenet`` or a file into a built model."""
    pretrain: Callable[..., dict] | None = None
    """``pretrain(model, train_loader, device, **hparams)`` → metrics: a phase the engine runs
    before its supervised loop (the convolutional autoencoder of ``cae-mlp``)."""
    epoch_end: Callable[..., dict] | None = None
    """``epoch_end(model, epoch, **hparams)`` → metrics: called after every epoch (pruning by
    distinctiveness, schedules the engine does not know)."""
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """Input (mean, std) per channel; ``None`` means scale to [-1, 1]."""
    tags: tuple[str, ...] = ()


#: Per-image vectors a plugin can ask for in ``features``: name → the columns that make it,
#: in order. ``lpqphog`` is paper 000's 10-D vector: the first 5 principal components of
#: LPQ and of PHOG, as the ANU ``SFEW.xlsx`` gives them (``images.parquet`` of an SFEW
#: manifest); models standardise it themselves.
FEATURE_VECTORS: Mapping[str, tuple[str, ...]] = {
    "lpqphog": tuple(f"{d}_pc{i}" for d in ("lpq", "phog") for i in range(1, 6)),
}

MODELS: Registry[ModelPlugin] = Registry("model")


def register_model(plugin: ModelPlugin, *aliases: str) -> ModelPlugin:
    """Register a plugin under its name (and aliases); returns it, so modules can keep it."""
    MODELS.register(plugin.name, aliases=aliases)(lambda: plugin)
    return plugin


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not hide the others
            _BROKEN[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if callable(obj) and not isinstance(obj, type(__import__("sys"))):
            obj()


_BROKEN: dict[str, str] = {}
MODELS.add_loader(_load_entry_points)


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def get_model(name: str) -> ModelPlugin:
    return MODELS.create(name)


def create_model(name: str, num_classes: int, **hparams: Any) -> Any:
    plugin = get_model(name)
    options = {**plugin.defaults, **hparams}
    return plugin.build(num_classes, **options)


def broken_plugins() -> Mapping[str, str]:
    """Entry points that failed to load, with why (shown by ``ferdata train --list``)."""
    MODELS.names()
    return dict(_BROKEN)


def require_torch_model(name: str) -> ModelPlugin:
    plugin = get_model(name)
    if plugin.kind != "torch":
        raise FerdataError(f"model {name!r} is a {plugin.kind} model; this needs a neural network")
    return plugin
