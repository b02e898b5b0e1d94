"""What ``ferdata report X [Y ...]`` means: a manifest name gives the dataset report, one
run folder the run report, several run folders a comparison."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ferdata.errors import FerdataError
from ferdata.manifest import Manifest
from ferdata.progress import ProgressSink
from ferdata.reports.dataset import ReportResult, dataset_report
from ferdata.training.runs import CONFIG, resolve_run

def build_report(targets: Sequence[str], *, out: str | os.PathLike | None = None,
                 manifests: str | os.PathLike | None = None, per_class: int = 8, seed: int = 0,
                 progress: ProgressSink | None = None) -> ReportResult:
    if not targets:
        raise FerdataError("name a manifest or one or more run folders, e.g. 'ferdata report jaffe'")
    resolved = [resolve_run(t) for t in targets]
    runs = [r for r in resolved if r is not None]
    if runs and len(runs) != len(targets):
        bad = next(t for t, r in zip(targets, resolved) if r is None)
        raise FerdataError(f"{bad!r} is not a run folder (no {CONFIG}); a comparison takes run folders only")
    if not runs:
        if len(targets) > 1:
            raise FerdataError("a dataset report takes one manifest; to compare, give run folders")
        return dataset_report(Manifest.open(targets[0], manifests), out, per_class=per_class, seed=seed,
                              progress=progress)
    from ferdata.reports.run import compare_report, run_report

    if len(runs) == 1:
        return run_report(runs[0], out, manifests=manifests, seed=seed, progress=progress)
    return compare_report(runs, out, progress=progress)
