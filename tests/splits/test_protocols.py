"""Every registered protocol, on fake manifests and on random ones (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.labels import CLASS_SETS, EMOTIONS
from ferdata.splits import list_protocols, make_split
from ferdata.splits.protocols import holdout_mask, refine_folds, stratified_folds
from tests.splits.fakes import people, write_manifest

ALL = list_protocols()
EXPECTED = {"spi", "ppi", "sps", "loso", "kfold", "official", "all-train", "all-test"}


def test_registry_holds_every_protocol():
    assert set(ALL) == EXPECTED


@pytest.mark.parametrize("protocol", ALL)
def test_get_n_splits_matches_the_folds_made(protocol, fake_manifest):
    from ferdata.splits import create_protocol

    folds = 3 if protocol in ("spi", "kfold", "ppi", "sps") else None
    r = make_split(fake_manifest(_rows_with_official()), protocol, folds=folds, executor=InlineExecutor(), write=False)
    groups = r.table.to_pandas()  # loso: one fold per subject
    hint = create_protocol(protocol, folds=folds).get_n_splits(groups=np.arange(r.n_folds))
    assert hint == r.n_folds == groups.fold.nunique()


def _rows_with_official():
    rows = people(n_subjects=6, sequences=True)
    for r in rows:  # the official split keeps a sequence in one part
        r["source_split"] = ("Training", "PublicTest", "PrivateTest")[int(r["subject_id"][1:]) % 3]
    return rows


def _by_fold(result):
    t = result.table.to_pandas()
    return {f: g for f, g in t.groupby("fold")}


@pytest.mark.parametrize("protocol", ALL)
def test_each_protocol_gives_every_image_one_role_per_fold(protocol, fake_manifest):
    m = fake_manifest(_rows_with_official())
    folds = 3 if protocol in ("spi", "kfold") else None
    r = make_split(m, protocol, folds=folds, executor=InlineExecutor(), write=False)
    ids = set(m.images().column("image_id").to_pylist())
    assert r.n_folds == len(_by_fold(r)) >= 1
    for f, g in _by_fold(r).items():
        assert not g["image_id"].duplicated().any()
        assert set(g["image_id"]) == ids, f"fold {f}"
        assert set(g["role"]) <= {"train", "val", "test"}
    assert r.audit["totals"]["sequences_shared"] == 0
    assert r.table.schema.field("fold").type == "int32"


@pytest.mark.parametrize("protocol", ["spi", "loso"])
def test_person_independent_protocols_share_no_subject(protocol, fake_manifest):
    m = fake_manifest(people(n_subjects=5))
    r = make_split(m, protocol, folds=2 if protocol == "spi" else None, executor=InlineExecutor(), write=False)
    assert r.audit["totals"]["subjects_shared"] == 0
    if protocol == "loso":
        assert r.n_folds == 5


def test_sps_sees_every_test_subject_in_training(fake_manifest):
    rows = people(n_subjects=4, per_label=3) + [{"image_id": "lonely", "label": "happy", "subject_id": "S999"}]
    r = make_split(fake_manifest(rows), "sps", executor=InlineExecutor(), write=False)
    assert r.audit["test_subjects_seen_in_train"] == 1.0
    t = r.table.to_pandas()
    assert t.loc[t.image_id == "lonely", "role"].tolist() == ["train"]
    assert any("1 subject(s) with a single image" in w for w in r.warnings)


def test_ppi_reports_the_share_of_test_subjects_seen_in_training(fake_manifest):
    r = make_split(fake_manifest(people(n_subjects=4, per_label=4)), "ppi", executor=InlineExecutor(), write=False)
    assert 0 < r.audit["test_subjects_seen_in_train"] <= 1


def test_val_size_carves_validation_under_the_group_rule(fake_manifest):
    r = make_split(fake_manifest(people(n_subjects=10)), "spi", folds=2, val_size=0.25,
                   executor=InlineExecutor(), write=False)
    t = r.table.to_pandas()
    assert (t.role == "val").any()
    assert r.audit["totals"]["subjects_shared"] == 0


def test_official_maps_source_splits_to_roles(fake_manifest):
    r = make_split(fake_manifest(_rows_with_official()), "official", executor=InlineExecutor(), write=False)
    t = r.table.to_pandas().merge(
        fake_manifest(_rows_with_official(), name="again").images().to_pandas()[["image_id", "source_split"]])
    assert dict(zip(t.source_split, t.role)) == {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def test_official_uses_validation_as_test_when_no_test_exists(fake_manifest):
    rows = people(n_subjects=2)
    for n, r in enumerate(rows):
        r["source_split"] = ("train", "val")[n % 2]
    r = make_split(fake_manifest(rows), "official", executor=InlineExecutor(), write=False)
    assert set(r.table.column("role").to_pylist()) == {"train", "test"}


@pytest.mark.parametrize("protocol,role", [("all-train", "train"), ("all-test", "test")])
def test_cross_dataset_protocols_give_one_role(protocol, role, fake_manifest):
    r = make_split(fake_manifest(people(n_subjects=2)), protocol, executor=InlineExecutor(), write=False)
    assert set(r.table.column("role").to_pylist()) == {role}
    assert r.name == protocol


def test_sequences_hold_together_under_ppi(fake_manifest):
    rows = people(n_subjects=6, per_label=3, sequences=True)
    for seed in range(3):
        r = make_split(fake_manifest(rows, name=f"m{seed}"), "ppi", seed=seed, executor=InlineExecutor(), write=False)
        t = r.table.to_pandas().merge(pd_rows(rows), on="image_id")
        assert (t.groupby("sequence_id").role.nunique() == 1).all()


def pd_rows(rows):
    import pandas as pd

    return pd.DataFrame(rows)[["image_id", "sequence_id"]]


def test_group_by_movie_keeps_movies_apart(fake_manifest):
    rows = people(n_subjects=8)
    for r in rows:
        r["movie"] = f"M{int(r['subject_id'][1:]) // 2}"
    r = make_split(fake_manifest(rows), "spi", folds=2, group_by="movie", executor=InlineExecutor(), write=False)
    assert r.metadata["group_column"] == "movie"
    assert r.audit["totals"]["groups_shared"] == 0


@pytest.mark.parametrize("options,message", [
    ({"folds": 1}, "^folds 1"),
    ({"val_size": 1.5}, "^val_size 1.5"),
    ({"folds": 50}, "lower folds"),
    ({"group_by": "camera"}, "^group_by 'camera'"),
    ({"folds": 3, "test_size": 0.2}, "^folds and test_size"),
    ({"near_threshold": 40}, "^near_threshold 40"),
])
def test_bad_options_fail_with_one_line(options, message, fake_manifest):
    with pytest.raises(FerdataError, match=message) as info:
        make_split(fake_manifest(people()), "spi", executor=InlineExecutor(), write=False, **options)
    assert "\n" not in str(info.value)


def test_stratified_group_folds_balance_classes_to_the_unit():
    # 30 subjects, each one sequence-like unit of 2 images per class it holds.
    rng = np.random.default_rng(1)
    y, groups = [], []
    for s in range(30):
        for c in rng.choice(4, size=rng.integers(1, 4), replace=False):
            y += [c, c]
            groups += [s, s]
    y, groups = np.array(y), np.array(groups)
    folds = stratified_folds(y, groups, 3, seed=0)
    for s in np.unique(groups):
        assert len(set(folds[groups == s])) == 1
    counts = np.array([[np.sum((folds == f) & (y == c)) for c in range(4)] for f in range(3)])
    assert np.abs(counts - counts.sum(0) / 3).max() <= 4  # within two units of the share


def test_refinement_never_makes_the_objective_worse():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    groups = rng.integers(0, 25, 120)
    start = rng.integers(0, 4, 25)[groups]
    refined = refine_folds(y, groups, start, 4)

    def cost(folds):
        counts = np.array([[np.sum((folds == f) & (y == c)) for c in range(3)] for f in range(4)])
        return ((counts - counts.sum(0) / 4) ** 2).sum()

    assert cost(refined) <= cost(start)
    assert all(len(set(refined[groups == g])) == 1 for g in np.unique(groups))


def test_holdout_mask_is_near_the_size_and_keeps_groups_whole():
    y = np.repeat(np.arange(4), 25)
    groups = np.arange(100) // 2
    mask = holdout_mask(y, groups, 0.2, seed=0)
    assert 16 <= mask.sum() <= 24
    assert all(len(set(mask[groups == g])) == 1 for g in np.unique(groups))


# ---- property-based: random manifests ------------------------------------------------------

LABELS = st.sampled_from(list(EMOTIONS[:5]))


@st.composite
def manifests(draw):
    n_subjects = draw(st.integers(4, 7))
    rows = []
    for n in range(draw(st.integers(12, 40))):
        subject = draw(st.integers(0, n_subjects - 1))
        rows.append({
            "image_id": f"i{n:03d}", "label": draw(LABELS),
            "subject_id": f"S{subject}" if draw(st.integers(0, 9)) else None,
            "sequence_id": f"S{subject}_q{draw(st.integers(0, 2))}" if draw(st.booleans()) else None,
            "readable": draw(st.integers(0, 9)) > 0,
            "source_split": draw(st.sampled_from(["Training", "PublicTest", "PrivateTest"])),
            "content_hash": f"c{draw(st.integers(0, 60))}",  # collisions: exact copies
        })
    return rows


def _split_random(rows, protocol, **options):
    with tempfile.TemporaryDirectory() as tmp:
        m = write_manifest(Path(tmp) / "random", rows, images=False)
        try:
            return m.images().to_pandas(), make_split(m, protocol, executor=InlineExecutor(), write=False, **options)
        except FerdataError as exc:
            assert "\n" not in str(exc)
            return None, None


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rows=manifests(), protocol=st.sampled_from(ALL), val=st.sampled_from([None, 0.25]), seed=st.integers(0, 3))
def test_every_image_lands_in_exactly_one_role_per_fold(rows, protocol, val, seed):
    folds = 2 if protocol in ("spi", "kfold") else None
    images, r = _split_random(rows, protocol, folds=folds, val_size=val, seed=seed)
    if r is None:
        return
    t = r.table.to_pandas()
    included = set(images.image_id[images.readable & images.label.notna()])
    if r.metadata["group_column"]:
        included &= set(images.image_id[images[r.metadata["group_column"]].notna()])
    assert not (set(t.image_id) - included)
    unreadable = set(images.image_id[~images.readable])
    assert not (set(t.image_id) & unreadable)
    for _, g in t.groupby("fold"):
        assert not g.image_id.duplicated().any()
        assert set(g.image_id) == set(t.image_id)
    seq = images.set_index("image_id").sequence_id
    t["seq"] = t.image_id.map(seq)
    straddling = int((t.dropna(subset=["seq"]).groupby(["fold", "seq"]).role.nunique() > 1).sum())
    assert straddling == r.audit["totals"]["sequences_shared"]
    if protocol != "official":  # the dataset's own split is what it is; the audit reports it
        assert straddling == 0
        assert r.audit["totals"]["exact_duplicates"] == 0
        t["copy"] = t.image_id.map(images.set_index("image_id").content_hash)
        assert (t.groupby(["fold", "copy"]).role.nunique() == 1).all()


@SETTINGS
@given(rows=manifests(), seed=st.integers(0, 3), val=st.sampled_from([None, 0.3]))
def test_spi_never_shares_a_group(rows, seed, val):
    images, r = _split_random(rows, "spi", folds=2, seed=seed, val_size=val)
    if r is None:
        return
    t = r.table.to_pandas().merge(images[["image_id", "subject_id"]], on="image_id")
    assert (t.groupby(["fold", "subject_id"]).role.nunique() == 1).all()
    assert r.audit["totals"]["subjects_shared"] == 0


@SETTINGS
@given(rows=manifests(), spec=st.sampled_from([*CLASS_SETS, "happy,sad", "anger"]), protocol=st.sampled_from(["ppi", "kfold"]))
def test_class_sets_never_leak_an_excluded_label(rows, spec, protocol):
    images, r = _split_random(rows, protocol, classes=spec)
    if r is None:
        return
    allowed = set(r.metadata["class_set"]["mapping"])
    labels = set(r.table.to_pandas().merge(images[["image_id", "label"]]).label)
    assert labels <= allowed
    leftover = images[images.readable & ~images.label.isin(allowed)]
    excluded = sum(n for why, n in r.excluded.items() if why.startswith("label "))
    assert excluded == len(leftover)
