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

``--real``: real label noise instead of injected flips. ``ferdata flag`` (the default, or
``--flag-args``) runs on the complete FER-2013 (``fer2013_full``, 35,887 images) as a
subprocess, timed (wall and CPU of the command and all its workers, with the load
average); its suspects and out-of-fold probabilities are then joined to the FER+ votes of
the Training images (``ferplus_votes_training.csv``). An image is mislabeled when FER+'s
majority (at least 5 of 10 votes) is one of the seven FER-2013 classes and differs from
the FER-2013 label; images without such a majority are left out of the scores. Printed:
precision, recall and F1 of the flagged set, precision in the top 1 / 5 / 10 %, average
precision and R-precision of the ranking (and the best F1 any cut of it reaches), each beside cleanlab's on the same probabilities and the
trivial rule's (flag where the most probable class is not the label; rank by margin), on
all scored Training images and separately on two fixed halves (``dev``/``held-out``, by a
hash of the path), so a choice made looking at one half can be checked on the other.
The FER+ votes are only the yardstick: ``ferdata flag`` never sees them.

    .venv/bin/python benchmarks/label_noise.py --real                         # ingest, flag, score
    .venv/bin/python benchmarks/label_noise.py --real --manifests /tmp/m --keep  # reuse the manifest next time
    .venv/bin/python benchmarks/label_noise.py --real --flag-args "--model small-cnn --epochs 10"
"""

from __future__ import annotations

import argparse
import hashlib
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
from ferdata.oof.backbone import ENV_WEIGHTS  # noqa: E402

CLEANLAB = "cleanlab==2.9.0"
CLEANLAB_DIR = ROOT / ".cache" / "cleanlab"
DATASETS = {"ck48": ("ckplus", "ckplus48"), "jaffe": ("jaffe", "jaffe")}
SIDE = 48

CLEANLAB_RUNNER = """
import sys, numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
d = np.load(sys.argv[1])
mask = find_label_issues(labels=d["labels"], pred_probs=d["probs"])
np.save(sys.argv[2], mask)
np.save(sys.argv[2] + ".quality.npy", get_label_quality_scores(d["labels"], d["probs"]))
"""


def ensure_cleanlab() -> None:
    if (CLEANLAB_DIR / "cleanlab").is_dir():
        return
    print(f"installing {CLEANLAB} into {CLEANLAB_DIR} (benchmark only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(CLEANLAB_DIR),
                    CLEANLAB, "termcolor"], check=True)


def cleanlab_issues(labels: np.ndarray, probs: np.ndarray, *, quality: bool = False):
    """cleanlab's default ``find_label_issues`` mask (and its default label quality scores)."""
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", labels=labels, probs=probs)
        env = {"PYTHONPATH": str(CLEANLAB_DIR), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1"}
        out = Path(tmp) / "out.npy"
        subprocess.run([sys.executable, "-c", CLEANLAB_RUNNER, str(Path(tmp) / "in.npz"), str(out)],
                       check=True, env=env)
        mask = np.load(out)
        return (mask, np.load(str(out) + ".quality.npy")) if quality else mask


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


# ---- --real: FER-2013 against the FER+ votes ---------------------------------------------------

FER_FULL = "fer2013_full"
VOTES_CSV = "ferplus_votes_training.csv"
#: FER+ vote columns of the seven FER-2013 classes, by canonical label.
FERPLUS_SEVEN = {"v_neutral": "neutral", "v_happiness": "happy", "v_surprise": "surprise", "v_sadness": "sad",
                 "v_anger": "anger", "v_disgust": "disgust", "v_fear": "fear"}


def yardstick(votes_csv: Path, images: list[dict]) -> dict[str, bool]:
    """``{image_id: mislabeled}`` for the images FER+ gives a clear verdict on: a majority of
    at least 5 of 10 votes, alone on top, for one of the seven FER-2013 classes."""
    import csv

    by_path = {r["path"]: r for r in images}
    out: dict[str, bool] = {}
    with open(votes_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames or [] if c.startswith("v_")]
        for row in reader:
            image = by_path.get(row["path"])
            if image is None:
                continue
            votes = {c: int(row[c]) for c in columns}
            top = max(votes.values())
            winners = [c for c, v in votes.items() if v == top]
            if top < 5 or len(winners) != 1 or winners[0] not in FERPLUS_SEVEN:
                continue
            out[image["image_id"]] = FERPLUS_SEVEN[winners[0]] != image["label"]
    return out


def ranking_figures(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision in the top 1 / 5 / 10 %, average precision and R-precision of a ranking
    (higher score = suspect), and the best F1 of any list cut from its top.

    R-precision is the precision of the top R, R being the number really mislabeled: a list
    exactly as long as the real problem has precision = recall = F1 = R-precision, so it is
    the F1 a right-sized list reaches. ``best F1`` and ``at xR`` say how much longer than the
    real problem a list must be for its F1 to peak."""
    order = np.argsort(-score, kind="stable")
    hits = truth[order]
    found = np.cumsum(hits)
    precision = found / np.arange(1, len(hits) + 1)
    out = {f"P@{k}%": float(hits[: max(1, round(k / 100 * len(hits)))].mean()) for k in (1, 5, 10)}
    real = int(hits.sum())
    out["AP"] = float((precision * hits).sum() / max(real, 1))
    out["R-prec"] = float(found[real - 1] / real) if real else 0.0
    f1 = 2 * found / (np.arange(1, len(hits) + 1) + max(real, 1))
    out["best F1"] = float(f1.max()) if len(f1) else 0.0
    out["at xR"] = float((f1.argmax() + 1) / max(real, 1)) if len(f1) else 0.0
    return out


def run_flag(name: str, manifests: Path, runs: Path, flag_args: str, weights: Path | None = None) -> dict[str, float]:
    """``ferdata flag`` as a user runs it, timed: wall, CPU of it and every worker, load.
    ``weights``: the ImageNet backbone for a machine whose torchvision cache has none."""
    import resource
    import shlex

    cmd = [sys.executable, "-m", "ferdata", "flag", name, "--manifests", str(manifests), "--runs", str(runs),
           *shlex.split(flag_args)]
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "120")}
    if weights is not None:
        env[ENV_WEIGHTS] = str(weights)
    shown = f"{ENV_WEIGHTS}={shlex.quote(str(weights))} " if weights is not None else ""
    print("$ " + shown + " ".join(shlex.quote(c) for c in cmd[2:]), flush=True)
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load_before[0], "load_after": os.getloadavg()[0]}


SHARED_WEIGHTS = "mobilenet_v2_imagenet_features.pth"


def shared_weights(data: Path) -> Path | None:
    """The ImageNet MobileNetV2 beside the data (``../shared/weights``) when ``ferdata flag``
    finds none of its own (``$FERDATA_BACKBONE_WEIGHTS``, torchvision's cache): without it
    the default falls back to HOG, and the benchmark would measure that instead."""
    from ferdata.oof.backbone import find_weights

    if find_weights() is not None:
        return None
    candidate = data.parent / "weights" / SHARED_WEIGHTS
    return candidate if candidate.is_file() else None


def real(args: argparse.Namespace) -> None:
    from ferdata.manifest import Manifest, read_metadata, read_table
    from ferdata.noise import read_run_predictions

    source, votes = args.data / FER_FULL, args.data / VOTES_CSV
    if not source.is_dir() or not votes.is_file():
        raise SystemExit(f"{args.data} has no {FER_FULL}/ and {VOTES_CSV}; pass --data DIR")
    ensure_cleanlab()
    work = Path(args.manifests) if args.manifests else Path(tempfile.mkdtemp(prefix="ferdata-real-noise-"))
    name = "fer2013_full"
    try:
        if not (work / name / "images.parquet").is_file():
            print(f"ingesting {source} ...", flush=True)
            ingest("fer2013", source, name=name, manifests=work)
        manifest = Manifest(work / name)
        timing = run_flag(name, work, work / "runs", args.flag_args, shared_weights(args.data))
        meta = read_metadata(manifest.table_path("suspects.parquet"))
        suspects = read_table(manifest.table_path("suspects.parquet")).to_pylist()
        oof = read_run_predictions([meta["source"]["run"]])
        images = manifest.images(columns=["image_id", "path", "label"]).to_pylist()
        truth_of = yardstick(votes, images)
        path_of = {r["image_id"]: r["path"] for r in images}
        labels, probs = oof.labels, oof.probs
        n = len(labels)
        flagged = {r["image_id"] for r in suspects}
        ferdata_mask = np.array([i in flagged for i in oof.image_ids])
        ferdata_score = find_label_issues(labels, probs, rank_by=meta["rank_by"], filter_by=meta["filter_by"]).score
        cleanlab_mask, cleanlab_quality = cleanlab_issues(labels, probs, quality=True)
        self_conf = probs[np.arange(n), labels]
        others = probs.copy()
        others[np.arange(n), labels] = -np.inf
        trivial_mask = probs.argmax(1) != labels
        trivial_score = others.max(1) - self_conf  # the plain margin
        rows = {"ferdata flag": (ferdata_mask, ferdata_score),
                "cleanlab (default)": (cleanlab_mask, -cleanlab_quality),
                "trivial (argmax != label; margin)": (trivial_mask, trivial_score)}
        scored = np.array([i in truth_of for i in oof.image_ids])
        truth = np.array([truth_of.get(i, False) for i in oof.image_ids])
        half = np.array([int(hashlib.sha256(path_of[i].encode()).hexdigest(), 16) % 2 for i in oof.image_ids])
        accuracy = float((probs.argmax(1) == labels).mean())
        baseline = float(np.bincount(labels).max() / n)
        print(f"\nFER-2013 complete: {n:,} images scored, out-of-fold accuracy {accuracy:.3f} "
              f"(majority baseline {baseline:.3f}); ferdata flagged {len(flagged):,} "
              f"({len(flagged) / n:.1%}; {int(ferdata_mask.sum()):,} of them scored), cleanlab {int(cleanlab_mask.sum()):,}, "
              f"trivial rule {int(trivial_mask.sum()):,}; rule {meta['filter_by']}, head {meta['source'].get('head')}")
        print(f"time: wall {timing['wall_s'] / 60:.1f} min, CPU {timing['cpu_s'] / 60:.1f} min "
              f"(= {timing['cpu_s'] / 120:.1f} min on 2 cores), load average {timing['load_before']:.1f} before, "
              f"{timing['load_after']:.1f} after")
        for part, mask in (("all", scored), ("dev half", scored & (half == 0)), ("held-out half", scored & (half == 1))):
            t = truth[mask]
            print(f"\nFER+ verdicts, {part}: {int(mask.sum()):,} Training images, {int(t.sum()):,} mislabeled "
                  f"({t.mean():.1%})")
            print(f"  {'':36} {'precision':>9} {'recall':>7} {'F1':>6} {'flagged':>8}   "
                  f"{'P@1%':>6} {'P@5%':>6} {'P@10%':>6} {'AP':>6} {'R-prec':>6}   {'best F1':>7} {'at':>6}")
            for label, (m, score) in rows.items():
                p, r, f, count = prf(m[mask], t)
                rk = ranking_figures(score[mask], t)
                print(f"  {label:36} {p:9.3f} {r:7.3f} {f:6.3f} {count:8,}   "
                      f"{rk['P@1%']:6.3f} {rk['P@5%']:6.3f} {rk['P@10%']:6.3f} {rk['AP']:6.3f} {rk['R-prec']:6.3f}"
                      f"   {rk['best F1']:7.3f} {rk['at xR']:5.2f}R")
            print(f"  {'random order':36} {'':9} {'':7} {'':6} {'':8}   {t.mean():6.3f} {t.mean():6.3f} "
                  f"{t.mean():6.3f} {t.mean():6.3f} {t.mean():6.3f}")
            print("  (R-prec: the precision, recall and F1 of a list exactly as long as the real problem; "
                  "best F1: the best of any list cut from the ranking's top, at that many times the real count)")
    finally:
        if not args.manifests and not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


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
    ap.add_argument("--real", action="store_true", help="real noise: flag fer2013_full, score against FER+ votes")
    ap.add_argument("--flag-args", default="", help="with --real: options for 'ferdata flag' (default: none)")
    ap.add_argument("--manifests", help="with --real: manifests folder to use and keep (ingested once)")
    ap.add_argument("--keep", action="store_true", help="with --real: keep the temporary manifests folder")
    args = ap.parse_args()
    if args.real:
        real(args)
        return
    missing = [folder for _, folder in DATASETS.values() if not (args.data / folder).is_dir()]
    if missing:
        ap.error(f"{args.data} has no {', '.join(missing)}; pass --data DIR")
    ensure_cleanlab()
    threadpool_limits(1)  # small fits: BLAS threads only fight each other (25x slower on 2 busy cores)

    methods = ("ferdata", "ferdata prune_by_noise_rate", "cleanlab")
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
                    "ferdata prune_by_noise_rate": find_label_issues(noisy, probs,
                                                                     filter_by="prune_by_noise_rate").is_issue,
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
