"""Model plugins: what a model declares so the training engine can run it.

A plugin is a :class:`ModelPlugin` registered under one or more names. First-party
plugins live in ``plugins/ferdata_plugins`` and third-party ones in any installed package;
both are found the same way, through the ``ferdata.models`` entry-point group: an entry
point names a module (importing it registers its plugins) or a callable (called once).

The engine owns the loop, devices, checkpoints and metrics; a plugin only says how to
build its model and what is special about training it.

Hyperparameter vocabulary
-------------------------
``defaults`` (and the command line over them: explicit options, ``--hp KEY=VALUE``) use
these plain names, shared by every plugin and the engine (whose own defaults are
``ferdata.training.hparams.ENGINE_DEFAULTS``). The engine passes all of them to
``build``, so a ``build`` takes ``**hparams`` and ignores the names it does not use.

======================= ===============================================================
``optimizer``           ``"sgd"``, ``"adam"`` or ``"adamw"``
``lr``                  initial learning rate
``momentum``            SGD momentum (0 = plain SGD); ``nesterov`` (bool)
``weight_decay``        L2 penalty passed to the optimizer (a param group may override it)
``epochs``              supervised epochs
``batch_size``          mini-batch size
``schedule``            ``"none"``; ``"step"`` (lr × ``gamma`` every ``step_size`` epochs:
                        paper 001's ×0.94 every 15); ``"cosine"``; ``"plateau"`` (lr × 0.1
                        when the validation loss stalls)
``patience``            early stopping on the validation role (epochs; 0 = off)
``augment``             comma list of ``flip``, ``crop`` (0.85–1 of the area), ``rotate``
                        (±10°), ``scale`` (±10%); ``all``; ``none``
``class_weights``       ``"none"`` or ``"balanced"`` (paper 004)
``dropout``             dropout probability of the model's classifier
``center_loss``         add the center loss (bool, ``--center-loss``)
``center_loss_weight``  λ, its weight (paper 001: 0.001)
``center_loss_alpha``   α, the learning rate of the class centres (paper 001: 0.001)
``seed``                random seed (also for scikit-learn estimators)
``pretrain_epochs``     epochs of a plugin's ``pretrain`` phase (``cae-mlp``'s autoencoder)
======================= ===============================================================

A plugin may add its own names (``regularizer``, ``ae_epochs``, ``width_mult``,
``kernel_size`` ...); its module docstring says what they mean.

Conventions between plugins and the engine
-------------------------------------------
* ``forward`` returns class scores of shape ``(batch, num_classes)``: logits, or
  log-probabilities (paper 000's log-softmax + NLL; log-softmax is idempotent, so
  cross-entropy on them equals NLL). Probabilities are ``softmax`` of either.
* Penultimate features (center loss, ``--center-loss``): the engine takes the input of
  the model's last ``nn.Linear`` (or the second item when ``forward`` returns a tuple).
  A model whose dropout precedes its classifier uses ``ferdata_plugins.layers.
  DropoutLinear`` so that input is the clean feature vector. First-party models also
  accept ``model(x, return_features=True)`` → ``(scores, features)`` with features of
  shape ``(batch, model.feature_dim)``.
* Feature inputs: a model with ``features`` gets one float32 tensor ``(batch, D)``, the
  named vectors concatenated in order, after the images: ``model(images, features)``.
  A model that reads no image at all has ``input_size == 0`` and ``channels == 0`` and is
  a ``sklearn`` model: it gets the same matrix as ``X`` in ``fit(X, y)`` /
  ``predict_proba(X)`` (columns follow ``classes_``). Known vectors are listed in
  :data:`FEATURE_VECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    (optimizer, lr, momentum, weight_decay, epochs, batch_size, schedule, step_size,
    gamma, augment, dropout, ...); command-line options override them."""
    param_groups: Callable[..., list[dict]] | None = None
    """``param_groups(model, **hparams)`` → optimizer groups (``{"params": [...]}``, a group
    may carry its own ``lr`` / ``weight_decay``, which win over the global ones); parameters
    left out are frozen (LLF, last-n-blocks, the pretrained encoder of ``cae-mlp``)."""
    extra_loss: Callable[..., Any] | None = None
    """``extra_loss(num_classes, feature_dim, **hparams)`` → a module whose forward takes
    (features, targets) and returns a scalar that the engine adds to every training batch's
    loss (features as for the center loss, see the module docstring). The center loss
    itself needs no plugin support: ``--center-loss`` adds it to any model."""
    features: tuple[str, ...] = ()
    """Extra per-image vectors the model consumes, by name in :data:`FEATURE_VECTORS`
    (``("lpqphog",)``); passed to ``forward`` after the images."""
    pretrained: Callable[..., None] | None = None
    """``pretrained(model, weights)`` loads ``imagenet`` or a file into a built model."""
    pretrain: Callable[..., dict] | None = None
    """``pretrain(model, train_loader, device, **hparams)`` → metrics: a phase the engine runs
    before its supervised loop (the convolutional autoencoder of ``cae-mlp``). Batches are
    the engine's: images first (then targets, row indices and, with ``features``, the
    feature tensor)."""
    epoch_end: Callable[..., dict] | None = None
    """``epoch_end(model, epoch, **hparams)`` → metrics: called after every epoch (``epoch``
    counts from 0) on the unwrapped model (pruning by distinctiveness, schedules the engine
    does not know); the metrics join that epoch's history row."""
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """Input (mean, std) per channel; ``None`` means scale to [-1, 1]."""
    tags: tuple[str, ...] = ()


#: Per-image vectors a plugin can ask for in ``features``: name → the ``images.parquet``
#: columns that make it, in order, when ``features.parquet`` has no column of that name.
#: ``lpqphog`` is paper 000's 10-D vector: the first 5 principal components of LPQ and of
#: PHOG (``ferdata features``, or the ANU ``SFEW.xlsx`` columns of an SFEW manifest);
#: models standardise it themselves.
FEATURE_VECTORS: Mapping[str, tuple[str, ...]] = {
    "lpqphog": tuple(f"{d}_pc{i}" for d in ("lpq", "phog") for i in range(1, 6)),
}

def _build(plugin: ModelPlugin, num_classes: int, **hparams: Any) -> Any:
    return plugin.build(num_classes, **{**plugin.defaults, **hparams})


#: Members are :class:`ModelPlugin` objects; ``create`` builds the network.
MODELS: Registry[Any] = Registry("model", entry_point_group=ENTRY_POINT_GROUP, construct=_build)
list_models = MODELS.list
get_model = MODELS.get
"""The plugin registered under a name (its declaration, not a network)."""
create_model = MODELS.create
"""``create_model(name, num_classes, **hparams)`` → the network (plugin defaults < hparams)."""
broken_plugins = MODELS.broken


def register_model(plugin: ModelPlugin, *aliases: str) -> ModelPlugin:
    """Register a plugin under its name (and aliases); returns it, so modules can keep it."""
    return MODELS.add(plugin.name, plugin, aliases=aliases)


def require_torch_model(name: str) -> ModelPlugin:
    plugin = get_model(name)
    if plugin.kind != "torch":
        raise FerdataError(f"model {name!r} is a {plugin.kind} model; this needs a neural network")
    return plugin
