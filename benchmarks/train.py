"""Training benchmarks (prints figures; not part of the test run).

1. Engine overhead: images/s of ``ferdata.training.train`` against a bare minimal torch
   loop on the same model, data (the same decoded tensors) and batch size, in one process.
2. CPU minutes and test accuracy mean ± std over folds for small-cnn, cnn-base and
   resnet18-alf on CK+48 spi-10 and JAFFE loso (ImageNet weights when torchvision's file is
   in the cache, else from scratch — the output says which).

    PYTHONPATH=.:plugins python benchmarks/train.py --data ../shared/data [--quick]

Splits: ``manifests/<name>/splits/<split>.parquet`` when it exists, else made with
``ferdata.splits.make_split`` (spi with 10 folds / loso, 10% validation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ferdata.engines import InlineExecutor  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402
from ferdata.manifest import Manifest  # noqa: E402
from ferdata.models import get_model, list_models  # noqa: E402

PAPERS = {
    "small-cnn": "paper 004: 47.83% top-1 on AffectNet 8 classes (55.66% pre-processed); not measured on CK+/JAFFE",
    "cnn-base": "paper 000: 39.39% on SFEW SPI (CNN base); not measured on CK+/JAFFE",
    "resnet18-alf": "paper 000: 57.43% on SFEW PPI (ImageNet ResNet18-ALF); not measured on CK+/JAFFE",
}


def ensure_split(m: Manifest, name: str) -> str:
    """``ferdata split`` with the papers' protocols: spi-10 (10 subject-independent folds,
    10% of each training part as validation) and loso."""
    if (m.dir / "splits" / f"{name}.parquet").exists():
        return "existing split file"
    from ferdata.splits import make_split

    protocol, _, k = name.partition("-")
    make_split(m, protocol, folds=int(k) if k else None, val_size=0.1, executor=InlineExecutor())
    return f"made with ferdata.splits.make_split({protocol!r}, folds={k or None}, val_size=0.1)"


def overhead(m: Manifest, split: str, model: str, epochs: int, batch: int, repeats: int = 2) -> dict:
    """Engine images/s vs a bare loop over the same decoded tensors, alternating ``repeats``
    times; each side reports its best epoch after the first (the least disturbed by other
    processes on a shared machine), and the median beside it."""
    import torch
    from torch import nn

    from ferdata.training import train
    from ferdata.training.data import FaceDataset, decode_all, gather_examples, read_split

    plugin = get_model(model)
    hp = {"epochs": epochs, "batch_size": batch, "augment": "none", "patience": 0, "lr": 1e-3, "optimizer": "adam"}
    ex = gather_examples(m, read_split(m, split), 0)
    idx = ex.select("train")
    images = decode_all(ex.files, plugin.input_size, plugin.channels)
    ds = FaceDataset(ex, idx, size=plugin.input_size, channels=plugin.channels, normalize=plugin.normalize, images=images)
    x_all, y_all = ds.__getitems__(list(range(len(idx))))[:2]
    engine_rates, bare_rates = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as runs:
            r = train(model, m, split, runs=runs, hparams=hp, device="cpu")
            hist = [json.loads(x) for x in (r.run_dir / "history.jsonl").read_text().splitlines()]
        engine_rates += [h["images_per_s"] for h in hist[1:] or hist]
        torch.manual_seed(0)
        net = plugin.build(len(ex.classes.classes))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        rates = []
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(len(idx))
            t0, seen = time.perf_counter(), 0
            for s in range(0, len(idx) - batch + 1, batch):
                b = perm[s:s + batch]
                loss = loss_fn(net(x_all[b]), y_all[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                seen += len(b)
            rates.append(seen / (time.perf_counter() - t0))
        bare_rates += rates[1:] or rates
    engine, bare = max(engine_rates), max(bare_rates)
    return {"model": model, "batch": batch, "train_images": int(len(idx)), "engine_images_per_s": engine,
            "bare_images_per_s": bare, "overhead_pct": 100 * (bare - engine) / bare,
            "engine_median": float(np.median(engine_rates)), "bare_median": float(np.median(bare_rates)),
            "load_average": os.getloadavg()[0]}


def accuracy(m: Manifest, split: str, model: str, epochs: int, folds: list[int] | None) -> dict:
    from ferdata.training import train
    from ferdata.training.weights import imagenet_file

    plugin = get_model(model)
    weights = "none"
    if plugin.pretrained is not None:
        from torchvision.models import get_weight

        if imagenet_file(get_weight("ResNet18_Weights.IMAGENET1K_V1")).exists():
            weights = "imagenet"
    hp = {"epochs": epochs, "patience": 10, "lr": 1e-3 if model != "resnet18-alf" else 5e-3}
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    accs, majority = [], []
    with tempfile.TemporaryDirectory() as runs:
        from ferdata.training.data import read_split

        for f in folds if folds is not None else read_split(m, split).folds:
            r = train(model, m, split, fold=f, runs=runs, hparams=hp, weights=weights, device="cpu", seed=0)
            accs.append(r.metrics["test"]["accuracy"])
            majority.append(r.metrics["test"]["majority_baseline"])
    return {"model": model, "manifest": m.name, "split": split, "folds": len(accs), "weights": weights,
            "epochs": epochs, "lr": hp["lr"], "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "majority_mean": float(np.mean(majority)), "cpu_minutes": (time.process_time() - cpu0) / 60,
            "wall_minutes": (time.perf_counter() - wall0) / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--manifests", type=Path, default=None, help="reuse ingested manifests here")
    ap.add_argument("--models", default="small-cnn,cnn-base,resnet18-alf")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-folds", type=int, default=None, help="only the first N folds of each split")
    ap.add_argument("--datasets", default="ck48,jaffe", help="accuracy runs on these (ck48, jaffe)")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--overhead-models", default="small-cnn,resnet18-alf")
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args()
    root = args.manifests or Path(tempfile.mkdtemp(prefix="ferdata-bench-"))
    datasets = {"ck48": ("ckplus", args.data / "ckplus48", "spi-10"), "jaffe": ("jaffe", args.data / "jaffe", "loso")}
    manifests = {}
    for name, (adapter, src, split) in datasets.items():
        try:
            m = Manifest.open(name, root)
        except Exception:  # noqa: BLE001 - not ingested yet
            m = ingest(adapter, src, name=name, manifests=root, executor=InlineExecutor()).manifest
        print(f"{name}: split {split}: {ensure_split(m, split)}", flush=True)
        manifests[name] = (m, split)
    print(f"torch threads: {__import__('torch').get_num_threads()}, cores: {os.cpu_count()}", flush=True)
    if not args.skip_overhead:
        for model in args.overhead_models.split(","):
            res = overhead(manifests["ck48"][0], "spi-10", model, epochs=4 if model == "small-cnn" else 2, batch=32)
            print("overhead", json.dumps(res), flush=True)
    if not args.skip_accuracy:
        for model in args.models.split(","):
            if model not in list_models():
                print(f"accuracy {model}: not registered here (skipped)", flush=True)
                continue
            for name, (m, split) in manifests.items():
                if name not in args.datasets.split(","):
                    continue
                folds = None if args.max_folds is None else list(range(args.max_folds))
                res = accuracy(m, split, model, args.epochs, folds)
                res["paper"] = PAPERS.get(model)
                print("accuracy", json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
