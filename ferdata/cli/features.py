"""``ferdata features``: LPQ / PHOG descriptors and their PCA reduction."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

ORDER = 30

from ferdata.cli.common import (EngineOpt, ManifestsOpt, RayAddressOpt, RichProgress, WorkersOpt, console,
                                engine_executor, engine_rows, print_broken, summary_table)


def features_command(
    name: Annotated[str | None, typer.Argument(help="Manifest name (or folder).", show_default=False)] = None,
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="Descriptors, comma separated (see --list).")] = "lpq,phog",
    lpq_window: Annotated[int, typer.Option("--lpq-window", help="LPQ window size (odd; the paper uses 3, 5 or 7).")] = 7,
    lpq_decorr: Annotated[bool, typer.Option("--lpq-decorr/--no-lpq-decorr", help="LPQ decorrelation (ρ = 0.90).")] = True,
    phog_bins: Annotated[int, typer.Option("--phog-bins", help="PHOG orientation bins.")] = 8,
    phog_angle: Annotated[int, typer.Option("--phog-angle", help="PHOG orientation range: 180 (unsigned) or 360.")] = 360,
    phog_levels: Annotated[int, typer.Option("--phog-levels", help="PHOG pyramid levels above the whole face.")] = 3,
    phog_roi: Annotated[str | None, typer.Option("--phog-roi", help="PHOG region TOP,BOTTOM,LEFT,RIGHT in pixels (0-based, end exclusive) (default: the whole face).")] = None,
    phog_edges: Annotated[str, typer.Option("--phog-edges", help="PHOG edge detector: canny (OpenCV, Octave's thresholds) or canny_skimage.")] = "canny",
    matlab_compatible: Annotated[bool, typer.Option("--matlab-compatible", help="Reproduce the original MATLAB code's quirks (see the README).")] = False,
    reduce: Annotated[str | None, typer.Option("--reduce", help="pca:K or none (default: pca:5 when --fit-on is given, else none).")] = None,
    fit_on: Annotated[str | None, typer.Option("--fit-on", help="Fit the reduction on SPLIT[:ROLE[:FOLD]] (role train, fold 0 by default), or on all images with 'all' (paper 000's choice: leaks test images into the transform).")] = None,
    reduce_from: Annotated[str | None, typer.Option("--reduce-from", help="Apply the reduction stored in another features.parquet (file, manifest folder or name).")] = None,
    crops: Annotated[bool, typer.Option("--crops/--no-crops", help="Describe the face crops of 'ferdata preprocess' when there are any.")] = True,
    crops_config: Annotated[str | None, typer.Option("--crops-config", help="Preprocessing config hash (default: the latest).")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the descriptors and edge detectors, and exit.")] = False,
) -> None:
    """Describe every face with LPQ / PHOG and write <manifest>/features.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.features import DESCRIPTORS, compute_features, create_descriptor, list_descriptors
    from ferdata.features.edges import list_edge_detectors
    from ferdata.manifest import Manifest

    if list_:
        table = Table(title="descriptors", title_justify="left")
        table.add_column("name")
        table.add_column("defaults")
        for n in list_descriptors():
            table.add_row(n, ", ".join(f"{k}={v}" for k, v in create_descriptor(n).params().items()))
        console.print(table)
        console.print(summary_table("edge detectors (--phog-edges)", [(e, "") for e in list_edge_detectors()]))
        print_broken(DESCRIPTORS)
        return
    if name is None:
        raise FerdataError("give a manifest name, e.g. 'ferdata features sfew' (see --help)")
    roi = _parse_roi(phog_roi)
    options = {
        "lpq": {"window": lpq_window, "decorr": lpq_decorr, "matlab_compatible": matlab_compatible},
        "phog": {"bins": phog_bins, "angle": phog_angle, "levels": phog_levels, "roi": roi,
                 "edge_detector": phog_edges, "matlab_compatible": matlab_compatible},
    }
    names = [n.strip() for n in descriptor.split(",") if n.strip()]
    if not names:
        raise FerdataError("--descriptor is empty; name at least one of: " + ", ".join(list_descriptors()))
    descriptors = [create_descriptor(n, **options.get(n, {})) for n in names]
    with engine_executor(engine, workers, ray_address) as executor:
        result = compute_features(
            Manifest.open(name, manifests), descriptors, reduce=reduce, fit_on=fit_on, reduce_from=reduce_from,
            use_crops=crops, crops_config=crops_config, executor=executor, progress=RichProgress(),
            manifests=manifests,
        )
    rows: list[tuple] = [("features", str(result.path)), ("input", result.input), ("images", result.n_images),
                         ("described", result.n_described)]
    rows += [(f"skipped: {why}", n) for why, n in sorted(result.skipped.items())]
    for n, info in result.descriptors.items():
        params = ", ".join(f"{k}={v}" for k, v in info["params"].items() if v is not None)
        rows.append((f"{n} ({info['length']} values)", params))
    red = result.reduction
    if red is not None:
        fitted = red.fitted_on
        if fitted.get("features_table"):
            where = fitted["features_table"]
        elif fitted.get("split"):  # spelled out: rich would render ":train:" as an emoji
            where = f"split {fitted['split']}, role {fitted['role']}, fold {fitted['fold']} ({fitted['n_images']} images)"
        else:
            where = f"all images ({fitted.get('n_images')}; paper 000's choice)"
        rows.append((f"reduction pca:{red.k}", f"fitted on {where}"))
        for n in red.descriptors:
            rows.append((f"  {n} variance explained", float(red.explained_variance_ratio[n].sum())))
        rows.append(("reduced columns", ", ".join([f"{n}_pca" for n in red.descriptors] + [red.fused_column])))
    else:
        rows.append(("reduction", "none (add --fit-on SPLIT[:ROLE] or --fit-on all)"))
    rows += engine_rows(executor)
    rows.append(("seconds", round(result.seconds, 2)))
    console.print(summary_table(f"features → {result.manifest.name}", rows))


def _parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    from ferdata.errors import FerdataError

    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise FerdataError(f"--phog-roi {text!r}: give four whole numbers TOP,BOTTOM,LEFT,RIGHT (e.g. 0,64,0,64)")
    return values  # type: ignore[return-value]


def register(app: typer.Typer) -> None:
    app.command("features")(features_command)
