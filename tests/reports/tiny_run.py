"""A tiny real run made with plain torch in the run-folder format of ``ferdata train``
(config.json, history.jsonl, best.pt, predictions.parquet with ``classes`` metadata), so
reports and predict are tested on a real network trained on real faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ferdata.manifest import Manifest, write_table
from ferdata.models import MODELS, ModelPlugin, register_model

PLUGIN = "report-test-cnn"


def _build(num_classes: int, **_: object):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, num_classes),
    )


def ensure_plugin() -> ModelPlugin:
    if PLUGIN not in MODELS:
        register_model(ModelPlugin(name=PLUGIN, description="3-conv test network", paper=None, input_size=48,
                                   channels=1, build=_build, defaults={"lr": 3e-3}))
    return MODELS.create(PLUGIN)


def make_tiny_run(manifest: Manifest, root: Path, *, folds: int = 2, epochs: int = 4, seed: int = 0) -> Path:
    """A fold group ``root/<name>/fold-<k>/`` trained subject-disjointly on ``manifest``."""
    import pyarrow as pa
    import torch
    from sklearn.model_selection import GroupKFold
    from torch import nn

    from ferdata.inference import RunModel

    plugin = ensure_plugin()
    rows = [r for r in manifest.images(columns=["image_id", "path", "label", "subject_id", "readable"]).to_pylist()
            if r["readable"] and r["label"]]
    classes = sorted({r["label"] for r in rows})
    prep = RunModel(Path("."), {}, plugin, None, classes)
    from ferdata.imageio import read_image

    images = [prep.resize(read_image(manifest.resolve(r["path"]))) for r in rows]
    x_all = prep.tensor(images)
    y_all = torch.tensor([classes.index(r["label"]) for r in rows])
    groups = [r["subject_id"] for r in rows]
    group = root / f"tiny-{manifest.name}"
    tables = []
    for fold, (train, test) in enumerate(GroupKFold(n_splits=folds).split(rows, y_all.numpy(), groups)):
        torch.manual_seed(seed + fold)
        model = plugin.build(len(classes))
        opt = torch.optim.Adam(model.parameters(), lr=plugin.defaults["lr"])
        loss_fn = nn.CrossEntropyLoss()
        run = group / f"fold-{fold}"
        run.mkdir(parents=True)
        history = []
        for epoch in range(epochs):
            model.train()
            perm = torch.from_numpy(np.random.default_rng(seed + epoch).permutation(train))
            for batch in perm.split(32):
                opt.zero_grad()
                loss = loss_fn(model(x_all[batch]), y_all[batch])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                tr_out, te_out = model(x_all[train]), model(x_all[test])
            history.append({"epoch": epoch + 1, "fold": fold,
                            "train_loss": float(loss_fn(tr_out, y_all[train])),
                            "train_accuracy": float((tr_out.argmax(1) == y_all[train]).float().mean()),
                            "val_loss": float(loss_fn(te_out, y_all[test])),
                            "val_accuracy": float((te_out.argmax(1) == y_all[test]).float().mean())})
        torch.save({"model": model.state_dict(), "classes": classes, "plugin": PLUGIN, "epoch": epochs}, run / "best.pt")
        with torch.no_grad():
            probs = torch.softmax(model(x_all), 1).double().numpy()
        role = np.array(["train"] * len(rows), dtype=object)
        role[test] = "test"
        cols = {"image_id": pa.array([r["image_id"] for r in rows]), "fold": pa.array([fold] * len(rows), pa.int32()),
                "role": pa.array(role.tolist()), "label": pa.array([r["label"] for r in rows]),
                "pred": pa.array([classes[i] for i in probs.argmax(1)])}
        for j, c in enumerate(classes):
            cols[f"prob_{c}"] = pa.array(probs[:, j], pa.float64())
        tables.append(pa.table(cols))
        write_table(run / "predictions.parquet", tables[-1], {"classes": classes})
        (run / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        (run / "config.json").write_text(json.dumps({
            "plugin": PLUGIN, "kind": "torch", "input_size": plugin.input_size, "channels": plugin.channels,
            "manifest": {"name": manifest.name, "path": str(manifest.dir.resolve())},
            "split": {"name": f"subject-kfold{folds}", "protocol": "kfold"}, "crops": None, "source": "images",
            "fold": fold, "run_id": run.name, "classes": classes, "hparams": dict(plugin.defaults), "seed": seed,
            "versions": {"torch": torch.__version__}}, indent=2))
    # the parent of a fold-all run: its own config and every fold's predictions
    write_table(group / "predictions.parquet", pa.concat_tables(tables), {"classes": classes})
    parent = json.loads((group / "fold-0" / "config.json").read_text())
    (group / "config.json").write_text(json.dumps({**parent, "fold": "all", "folds": list(range(folds)),
                                                   "run_id": group.name}, indent=2))
    return group


_MADE: dict[str, Path] = {}


def shared_tiny_run(manifest: Manifest, tmp_path_factory) -> Path:  # noqa: ANN001 - pytest's factory
    """One tiny run per manifest per test session, shared by every test module that needs one."""
    key = str(manifest.dir)
    if key not in _MADE:
        _MADE[key] = make_tiny_run(manifest, tmp_path_factory.mktemp("tiny-runs"))
    return _MADE[key]
