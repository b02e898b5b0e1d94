"""How well ``ferdata flag`` finds label errors, next to cleanlab, on the same probabilities.

For CK+48 and JAFFE: flip 10 % of the labels (seeded, symmetric: each flipped image gets a
uniformly drawn other class), compute out-of-fold probabilities once per seed, then score
ferdata's confident learning (``ferdata.noise.find_label_issues``) and cleanlab's
``find_label_issues`` against the injected flips (precision, recall, F1).

Probabilities, by default: a quick scikit-learn model (HOG features on 48×48 grey faces,
standardised, logistic regression) fitted per fold of a subject-grouped 5-fold split,
trained on the *noisy* labels, so no image is scored by a model that saw it or its
subject. ``--model NAME`` trains a model plugin per fold through the training engine
instead (``ferdata flag --model``'s path: the noise becomes relabel decisions in a
temporary manifest and an spi split is made on them).

cleanlab is AGPL-licensed and no dependency of ferdata: this script installs
``cleanlab==2.9.0`` into ``.cache/cleanlab`` (pip --target) on first use and runs it in a
separate process that only sees the saved labels and probabilities.

    .venv/bin/python benchmarks/label_noise.py                  # ../shared/data, seeds 0 1 2
    .venv/bin/python benchmarks/label_noise.py --data DIR --noise 0.1 --seeds 0
    .venv/bin/python benchmarks/label_noise.py --model small-cnn --epochs 30 --seeds 0   # through the engine
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferdata.engines import InlineExecutor  # noqa: E402
from ferdata.imageio import read_image  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402
from ferdata.noise import find_label_issues  # noqa: E402

CLEANLAB = "cleanlab==2.9.0"
CLEANLAB_DIR = ROOT / ".cache" / "cleanlab"
DATASETS = {"ck48": ("ckplus", "ckplus48"), "jaffe": ("jaffe", "jaffe")}
SIDE = 48

CLEANLAB_RUNNER = """
import sys, numpy as np
from cleanlab.filter import find_label_issues
d = np.load(sys.argv[1])
mask = find_label_issues(labels=d["labels"], pred_probs=d["probs"])
np.save(sys.argv[2], mask)
"""


def ensure_cleanlab() -> None:
    if (CLEANLAB_DIR / "cleanlab").is_dir():
        return
    print(f"installing {CLEANLAB} into {CLEANLAB_DIR} (benchmark only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(CLEANLAB_DIR),
                    CLEANLAB, "termcolor"], check=True)


def cleanlab_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", labels=labels, probs=probs)
        env = {"PYTHONPATH": str(CLEANLAB_DIR), "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", CLEANLAB_RUNNER, str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npy")],
                       check=True, env=env)
        return np.load(Path(tmp) / "out.npy")


def features(manifest) -> tuple[list[dict], np.ndarray]:
    rows = [r for r in manifest.images(columns=["image_id", "path", "label", "subject_id", "readable"]).to_pylist()
            if r["readable"]]
    out = []
    for r in rows:
        img = Image.fromarray(read_image(manifest.resolve(r["path"]), gray=True)).resize((SIDE, SIDE), Image.BILINEAR)
        out.append(hog(np.asarray(img, dtype=np.float32) / 255.0, orientations=9, pixels_per_cell=(6, 6),
                       cells_per_block=(2, 2)))
    return rows, np.array(out)


def inject(labels: np.ndarray, k: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate·n) labels, each to a uniformly drawn other class."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=round(rate * n), replace=False)] = True
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, k, flipped.sum())) % k
    return noisy, flipped


def out_of_fold(X: np.ndarray, y: np.ndarray, groups: list[str], k: int, seed: int, folds: int) -> np.ndarray:
    probs = np.zeros((len(y), k))
    for train, test in StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.05))
        model.fit(X[train], y[train])
        probs[np.ix_(test, model.classes_)] = model.predict_proba(X[test])
    return probs


def engine_out_of_fold(manifest, rows: list[dict], noisy: np.ndarray, classes: list[str], seed: int, folds: int,
                       model: str, epochs: int | None, device: str, runs: Path) -> np.ndarray:
    """The same through the training engine: the noisy labels become relabel decisions in
    the (temporary) manifest, a subject-grouped split is made on them, and one ``model`` is
    trained per fold (``ferdata flag --model``'s path)."""
    from ferdata.manifest.effective import LABELS_TABLE
    from ferdata.noise import oof_from_model
    from ferdata.review.pull import append_decisions
    from ferdata.splits import make_split

    manifest.table_path(LABELS_TABLE).unlink(missing_ok=True)
    append_decisions(manifest, [{"image_id": r["image_id"], "old_label": r["label"], "new_label": classes[n],
                                 "annotator": "benchmark", "time": "", "project": "label-noise", "task_id": None,
                                 "source": f"injected noise, seed {seed}"}
                                for r, n in zip(rows, noisy) if classes[n] != r["label"]])
    split = make_split(manifest, "spi", folds=folds, seed=seed, name=f"noise-{seed}", workers=1).name
    oof = oof_from_model(manifest, model, split, runs=runs, seed=seed, device=device,
                         hparams={"epochs": epochs} if epochs else None)
    index = {i: k for k, i in enumerate(oof.image_ids)}
    order = [oof.classes.index(c) for c in classes]
    return oof.probs[[index[r["image_id"]] for r in rows]][:, order]


def prf(mask: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, int]:
    tp = int((mask & truth).sum())
    p = tp / mask.sum() if mask.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), int(mask.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("FERDATA_TEST_DATA") or ROOT.parent / "shared" / "data"),
                    help="folder holding ckplus48/ and jaffe/ [default: $FERDATA_TEST_DATA or ../shared/data]")
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model", help="train this model plugin per fold through the engine instead of the quick "
                                    "scikit-learn fit (e.g. small-cnn)")
    ap.add_argument("--epochs", type=int, help="with --model")
    ap.add_argument("--device", default="auto", help="with --model")
    args = ap.parse_args()
    missing = [folder for _, folder in DATASETS.values() if not (args.data / folder).is_dir()]
    if missing:
        ap.error(f"{args.data} has no {', '.join(missing)}; pass --data DIR")
    ensure_cleanlab()
    threadpool_limits(1)  # small fits: BLAS threads only fight each other (25x slower on 2 busy cores)

    methods = ("ferdata", "ferdata --filter-by both", "cleanlab")
    totals: dict[tuple[str, str], list] = {}
    source = (f"{args.model} through the training engine, spi split" if args.model
              else "HOG 48x48 + logistic regression")
    print(f"label noise {args.noise:.0%} symmetric, seeds {args.seeds}, {args.folds}-fold subject-grouped "
          f"out-of-fold probabilities ({source}, trained on the noisy labels)\n")
    print(f"{'dataset':8} {'seed':>4} {'n':>5} {'flips':>5} {'acc(noisy)':>10} {'acc(true)':>9}   "
          + "   ".join(f"{m:>26}" for m in methods))
    print(f"{'':48}" + "   ".join(f"{'P     R     F1    #':>26}" for _ in methods))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (adapter, folder) in DATASETS.items():
            manifest = ingest(adapter, args.data / folder, name=name, manifests=Path(tmp),
                              executor=InlineExecutor()).manifest
            rows, X = features(manifest)
            classes = sorted({r["label"] for r in rows})
            y = np.array([classes.index(r["label"]) for r in rows])
            groups = [r["subject_id"] for r in rows]
            for seed in args.seeds:
                noisy, flipped = inject(y, len(classes), args.noise, seed)
                start = time.perf_counter()
                if args.model:
                    probs = engine_out_of_fold(manifest, rows, noisy, classes, seed, args.folds, args.model,
                                               args.epochs, args.device, Path(tmp) / "runs")
                else:
                    probs = out_of_fold(X, noisy, groups, len(classes), seed, args.folds)
                fit_s = time.perf_counter() - start
                masks = {
                    "ferdata": find_label_issues(noisy, probs).is_issue,
                    "ferdata --filter-by both": find_label_issues(noisy, probs, filter_by="both").is_issue,
                    "cleanlab": cleanlab_issues(noisy, probs),
                }
                acc_noisy = float((probs.argmax(1) == noisy).mean())
                acc_true = float((probs.argmax(1) == y).mean())
                cells = []
                for m in methods:
                    p, r, f, count = prf(masks[m], flipped)
                    totals.setdefault((name, m), []).append((p, r, f))
                    cells.append(f"{p:.3f} {r:.3f} {f:.3f} {count:4d}")
                print(f"{name:8} {seed:>4} {len(y):>5} {int(flipped.sum()):>5} {acc_noisy:>10.3f} {acc_true:>9.3f}   "
                      + "   ".join(f"{c:>26}" for c in cells) + f"   (fit {fit_s:.1f} s)", flush=True)
    print("\nmean over seeds (precision / recall / F1):")
    for (name, m), vals in totals.items():
        p, r, f = np.mean(vals, axis=0)
        print(f"  {name:6} {m:26} P {p:.3f}  R {r:.3f}  F1 {f:.3f}")


if __name__ == "__main__":
    main()
