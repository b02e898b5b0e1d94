"""``ferdata features``: LPQ / PHOG descriptors and their PCA reduction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ferdata.cli.common import (
    EngineOpt,
    Example,
    JsonOpt,
    ManifestsOpt,
    NoWaitOpt,
    RayAddressOpt,
    RichProgress,
    Summary,
    WorkersOpt,
    command_help,
    console,
    engine_executor,
    engine_rows,
    lock_waits,
    print_broken,
    summary_table,
    table,
)

if TYPE_CHECKING:
    from ferdata.features.extract import FeaturesResult

ORDER = 30

EXAMPLES = (
    Example("ferdata features jaffe --fit-on loso:train",
            "LPQ + PHOG of every crop, PCA to 5 fitted on the training role of fold 0"),
    Example("ferdata features sfew --descriptor lpq --lpq-window 5 --no-crops",
            "LPQ alone, on the whole images"),
    Example("ferdata features --list", "the descriptors and their defaults"),
)


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
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Describe every face with LPQ / PHOG and write <manifest>/features.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.features import (
        DESCRIPTORS,
        compute_features,
        create_descriptor,
        list_descriptors,
    )
    from ferdata.features.edges import list_edge_detectors
    from ferdata.manifest import Manifest

    if list_:
        console.print(table("descriptors", ("name", "defaults"),
                            [(n, ", ".join(f"{k}={v}" for k, v in create_descriptor(n).params().items()))
                             for n in list_descriptors()], justify=("left", "left")))
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
    with lock_waits(no_wait), engine_executor(engine, workers, ray_address) as executor:
        result = compute_features(
            Manifest.open(name, manifests), descriptors, reduce=reduce, fit_on=fit_on, reduce_from=reduce_from,
            use_crops=crops, crops_config=crops_config, executor=executor, progress=RichProgress(),
            manifests=manifests,
        )
    features_summary(result, executor).print(as_json)


def features_summary(result: FeaturesResult, executor: Any = None) -> Summary:
    """The closing table of a features run (also a stage of 'ferdata pipeline')."""
    s = Summary(f"features → {result.manifest.name}")
    s.row("features", str(result.path)).row("input", result.input).row("images", result.n_images)
    s.row("described", result.n_described)
    s.counted("skipped", result.skipped)
    for n, info in result.descriptors.items():
        params = ", ".join(f"{k}={v}" for k, v in info["params"].items() if v is not None)
        s.row(f"{n} ({info['length']} values)", params, key=n)
    red = result.reduction
    if red is not None:
        fitted = red.fitted_on
        if fitted.get("features_table"):
            where = fitted["features_table"]
        elif fitted.get("split"):
            where = f"split {fitted['split']}, role {fitted['role']}, fold {fitted['fold']} ({fitted['n_images']} images)"
        else:
            where = f"all images ({fitted.get('n_images')}; paper 000's choice)"
        s.row(f"reduction pca:{red.k}", f"fitted on {where}", key="reduction")
        for n in red.descriptors:
            s.row(f"  {n} variance explained", float(red.explained_variance_ratio[n].sum()))
        s.row("reduced columns", ", ".join([f"{n}_pca" for n in red.descriptors] + [red.fused_column]))
    else:
        s.row("reduction", "none (add --fit-on SPLIT[:ROLE] or --fit-on all)")
    for label, value in engine_rows(executor):
        s.row(label, value)
    s.row("seconds", round(result.seconds, 2))
    return s


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
    app.command("features", **command_help("LPQ / PHOG descriptors of every face, PCA-reduced", EXAMPLES))(
        features_command)
