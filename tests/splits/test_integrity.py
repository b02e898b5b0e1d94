"""Integrity by default: clips and near-duplicate clusters never straddle roles, whatever the
protocol and ``--group-by``; what is left across roles is listed by path and ``--strict``
fails on it; SFEW groups by movie unless told, and ``--group-by subject`` says it is paper
000's definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.manifest import images_schema
from ferdata.splits import create_protocol, make_split
from ferdata.splits.make import NEAR_JOIN_THRESHOLD, assign_roles, build_frame, join_near_duplicates
from ferdata.splits.phash import near_pairs, phash_array
from tests.splits.fakes import people

INLINE = InlineExecutor()


def _roles_of(result, key: str, frame_rows: pd.DataFrame) -> pd.DataFrame:
    """Per fold and ``key`` value: the set of roles its images have."""
    table = result.table.to_pandas().merge(frame_rows[["image_id", key]], on="image_id")
    return table.groupby(["fold", key])["role"].nunique()


# ---- a planted near-duplicate: listed by path, refused by --strict ------------------------------


def near_variant(pixels: np.ndarray, bits: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A noisy copy of ``pixels`` whose pHash differs in ``bits[0]``..``bits[1]`` bits: a
    near-duplicate looser than the join bar (2 bits) but inside the audit's (4 bits)."""
    base = phash_array(pixels)
    rng = np.random.default_rng(seed)
    for scale in np.linspace(2, 60, 300):
        noisy = np.clip(pixels + rng.normal(0, scale, pixels.shape), 0, 255).astype(np.uint8)
        if bits[0] <= bin(base ^ phash_array(noisy)).count("1") <= bits[1]:
            return noisy
    raise AssertionError("no variant found at that distance")


def _planted(n_subjects: int = 6) -> list[dict]:
    rows = people(n_subjects=n_subjects)
    rng = np.random.default_rng(11)
    for r in rows:
        r["pixels"] = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    a = next(i for i, r in enumerate(rows) if r["subject_id"] == "S000")
    b = next(i for i, r in enumerate(rows) if r["subject_id"] == "S003")
    rows[b]["pixels"] = near_variant(rows[a]["pixels"], (NEAR_JOIN_THRESHOLD + 1, 4))
    return rows


def test_a_planted_near_duplicate_is_listed_with_paths_and_strict_refuses(fake_manifest):
    m = fake_manifest(_planted())
    r = make_split(m, "spi", folds=3, executor=INLINE)
    assert r.audit["near_duplicates_joined"]["pairs"] == 0  # above the join bar: the pair is not joined
    leaks = r.audit["leaks"]  # one entry per fold in which the pair straddles roles
    assert len(leaks) == r.audit["totals"]["near_duplicates"] == 2 and {x["fold"] for x in leaks} == {0, 1}
    for leak in leaks:
        assert {leak["a"], leak["b"]} == {"s0-happy-0.png", "s3-happy-0.png"} and leak["kind"] == "near"
        assert NEAR_JOIN_THRESHOLD < leak["bits"] <= 4 and {leak["a_role"], leak["b_role"]} == {"train", "test"}
    warning = next(w for w in r.warnings if "forbids" in w)
    assert "2 near-duplicate pair(s) across roles (pHash within 4 bits, pixels ≥ 0.92) (over 2 folds)" in warning
    assert "s0-happy-0.png" in warning and "s3-happy-0.png" in warning and "--near-threshold 2" in warning
    r.path.unlink()
    with pytest.raises(FerdataError, match=r"leaks: 2 near-duplicate pair.*s\d-happy-0.png \((train|test)\) ~ ") as info:
        make_split(m, "spi", folds=3, strict=True, executor=INLINE)
    assert "\n" not in str(info.value)
    assert not r.path.exists()
    # The bar the user sets decides: at 2 bits the pair is not a finding.
    assert make_split(m, "spi", folds=3, strict=True, near_threshold=2, executor=INLINE).audit["leaks"] == []


def test_info_lists_every_pair_left_across_roles(fake_manifest):
    from ferdata.splits.info import info_sections

    m = fake_manifest(_planted())
    make_split(m, "spi", folds=3, executor=INLINE)
    section = next(s for s in info_sections(m, "spi-3") if "pairs left across roles" in s["title"])
    row = section["rows"][0]
    assert len(section["rows"]) == 2 and row[1].startswith("near (") and "s0-happy-0.png" in row[2] + row[3] and "s3-happy-0.png" in row[2] + row[3]


def test_merged_groups_warning_names_them(fake_manifest):
    rows = people(n_subjects=6)
    a = next(i for i, r in enumerate(rows) if r["subject_id"] == "S001")
    b = next(i for i, r in enumerate(rows) if r["subject_id"] == "S004")
    rows[a]["content_hash"] = rows[b]["content_hash"] = "same"
    r = make_split(fake_manifest(rows), "spi", folds=3, executor=INLINE, write=False)
    merged = next(w for w in r.warnings if "merged" in w)
    assert "S001 + S004" in merged and "1 group(s)" in merged


def test_sps_names_the_subjects_that_stay_in_train(fake_manifest):
    rows = people(n_subjects=4) + [{"image_id": "lonely", "label": "happy", "subject_id": "S999"}]
    r = make_split(fake_manifest(rows), "sps", executor=INLINE, write=False)
    assert "sps: 1 subject(s) with a single image or sequence stay in train (e.g. S999)" in r.warnings


# ---- clips: an SFEW-named fixture whose clips hold several characters --------------------------

#: (movie, timestamp, characters, emotion): clips of several characters; one character
#: number (00000011) appears in two movies, as numbers repeat across SFEW's movies.
CLIPS = [
    ("Hangover", "010805134", ("00000019", "00000020"), "Happy"),
    ("Hangover", "010900000", ("00000019", "00000007", "00000021"), "Angry"),
    ("Hangover", "012553854", ("00000031", "00000044"), "Sad"),
    ("HarryPotter_Deathly_Hallows_1", "001610960", ("00000028", "00000029"), "Happy"),
    ("HarryPotter_Deathly_Hallows_1", "001700000", ("00000028", "00000005", "00000006"), "Sad"),
    ("HarryPotter_Deathly_Hallows_1", "001800000", ("00000030",), "Angry"),
    ("IAmSam", "013820200", ("00000055", "00000101"), "Angry"),
    ("IAmSam", "013827920", ("00000055", "00000102", "00000103"), "Happy"),
    ("IAmSam", "013900000", ("00000056",), "Sad"),
    ("OceansTwelve", "002850840", ("00000016", "00000017"), "Sad"),
    ("OceansTwelve", "001817760", ("00000060", "00000061", "00000062"), "Angry"),
    ("OceansTwelve", "001900000", ("00000063",), "Happy"),
    ("TheShining", "000745280", ("00000070", "00000011"), "Happy"),
    ("TheShining", "000800000", ("00000071", "00000072"), "Angry"),
    ("TheShining", "000900000", ("00000073",), "Sad"),
    ("Bridesmaids", "004523000", ("00000034", "00000035"), "Sad"),
    ("Bridesmaids", "015143720", ("00000011", "00000036", "00000037"), "Happy"),
    ("Bridesmaids", "015200000", ("00000038",), "Angry"),
]


@pytest.fixture(scope="module")
def sfew_clips(real_data, tmp_path_factory):
    """An SFEW ANU layout whose frames are real SFEW frames (one per clip, the clip's other
    characters shifted copies of it, as consecutive frames of a scene are), ingested."""
    from PIL import Image

    from ferdata.ingest import ingest

    frames = sorted((real_data / "sfew_anu" / "Images").rglob("*.png"))
    if not frames:
        pytest.skip("the SFEW sample is not in the data folder")
    root = tmp_path_factory.mktemp("sfew-clips")
    for k, (movie, stamp, chars, emotion) in enumerate(CLIPS):
        base = np.asarray(Image.open(frames[k % len(frames)]).convert("RGB").resize((180, 144)))
        for j, char in enumerate(chars):
            frame = np.roll(base, 6 * j, axis=1)  # the camera pans: shifted, not identical
            path = root / "src" / "Images" / emotion / f"{movie}_{stamp}_{char}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(path)
    return ingest("sfew", root / "src", name="sfew-clips", manifests=root / "manifests", xlsx="none",
                  executor=INLINE).manifest


CLIP_PROTOCOLS = [("spi", {"folds": 3}), ("spi", {"folds": 3, "group_by": "subject"}), ("ppi", {"test_size": 0.3}),
                  ("loso", {}), ("loso", {"group_by": "subject"}), ("kfold", {"folds": 3, "group_by": "subject"}),
                  ("kfold", {"folds": 3, "group_by": "movie"}), ("kfold", {"folds": 3}), ("sps", {"test_size": 0.3})]


@pytest.mark.parametrize("protocol,options", CLIP_PROTOCOLS, ids=[f"{p}-{'-'.join(f'{k}={v}' for k, v in o.items())}"
                                                                  for p, o in CLIP_PROTOCOLS])
def test_no_sfew_clip_straddles_roles(sfew_clips, protocol, options):
    r = make_split(sfew_clips, protocol, executor=INLINE, write=False, **options)
    images = sfew_clips.images().to_pandas()
    assert images["clip"].nunique() == len(CLIPS)
    assert (_roles_of(r, "clip", images) == 1).all(), "a clip is in two roles"
    assert r.audit["totals"]["clips_shared"] == 0 and r.audit["clips"] == len(CLIPS)
    if options.get("group_by") == "subject":  # clips chain characters: 00000019 + 00000020 + 00000007 ...
        assert (_roles_of(r, "subject_id", images) == 1).all()
        assert any("subject_id value(s) merged" in w for w in r.warnings)
    if protocol in ("spi", "loso") and "group_by" not in options:  # SFEW's default grouping is the movie
        assert r.metadata["group_column"] == "movie"
        assert (_roles_of(r, "movie", images) == 1).all()
        assert not any("paper 000" in w for w in r.warnings)
    if options.get("group_by") == "subject":
        assert r.metadata["group_column"] == "subject_id"
        assert "paper 000's subject: the character field alone" in r.warnings[0]


def test_sfew_subjects_are_the_character_field(sfew_clips):
    images = sfew_clips.images().to_pandas()
    row = images[images["path"] == "Images/Happy/Hangover_010805134_00000019.png"].iloc[0]
    assert (row["movie"], row["clip"], row["subject_id"]) == ("Hangover", "Hangover_010805134", "00000019")
    assert images["subject_id"].nunique() == len({c for _, _, chars, _ in CLIPS for c in chars})


def test_the_anu_set_has_paper_000s_102_subjects(real_data, tmp_path):
    """Every name in the real ANU SFEW.xlsx (675 rows), as files in the ANU layout: 102
    subjects (the character field alone), every clip in one role under spi."""
    from PIL import Image

    from ferdata.datasets.sfew import read_xlsx
    from ferdata.ingest import ingest
    from ferdata.labels import SFEW_NAMES, SFEW_XLSX_CODES

    xlsx = real_data / "sfew_anu" / "PCA" / "SFEW.xlsx"
    if not xlsx.exists():
        pytest.skip("SFEW.xlsx not in the data folder")
    folder = {label: name for name, label in SFEW_NAMES.items()}
    rng = np.random.default_rng(0)
    for stem, rows in read_xlsx(xlsx).items():
        for code in rows:
            path = tmp_path / "anu" / "Images" / folder[SFEW_XLSX_CODES[code]] / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    res = ingest("sfew", tmp_path / "anu", manifests=tmp_path / "m", xlsx=str(xlsx), executor=INLINE)
    images = res.manifest.images().to_pandas()
    assert len(images) == 675 and images["name_error"].isna().all()
    assert images["subject_id"].nunique() == 102
    assert res.warnings["irregular file name, read leniently"] == 3  # OceansThirteen-…, IAmSam_…__…
    clips = images.groupby("clip")["path"].count()
    assert (clips > 1).sum() > 100  # many clips hold several frames
    r = make_split(res.manifest, "spi", executor=INLINE, write=False)
    assert r.metadata["group_column"] == "movie" and r.audit["totals"]["clips_shared"] == 0
    assert (_roles_of(r, "clip", images) == 1).all()
    # Paper 000's subjects, with every clip kept whole, chain into a few groups, one of 667
    # frames: said where the split is made, and refused where the folds cannot exist.
    by_subject = make_split(res.manifest, "spi", group_by="subject", executor=INLINE, write=False)
    assert any("largest group holds 667 of 675 images" in w and "cannot be balanced" in w
               for w in by_subject.warnings)
    with pytest.raises(FerdataError, match=r"the 102 subject_id values merge into \d group.*667 of 675.*"
                                           "leave --group-by out to group by movie"):
        make_split(res.manifest, "spi", folds=10, group_by="subject", executor=INLINE, write=False)


# ---- the property: planted near-duplicate clusters never straddle roles -------------------------


def _flip(value: int, bits: list[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


@st.composite
def manifests_with_clusters(draw):
    """An in-memory images table: ``n`` subjects with single images, plus clusters of
    near-identical pictures (pHash within the join bar of a random centre) filed under
    random subjects and labels."""
    n_subjects = draw(st.integers(3, 7))
    labels = ("happy", "sad", "anger")
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    rows, hashes, cluster = [], [], []
    for s in range(n_subjects):
        for k in range(draw(st.integers(3, 6))):
            rows.append((f"S{s}", labels[(s + k) % 3]))
            hashes.append(int(rng.integers(0, 2**63)))
            cluster.append(None)
    for c in range(draw(st.integers(1, 4))):
        centre = int(rng.integers(0, 2**63))
        for m in range(draw(st.integers(2, 4))):
            flips = rng.choice(64, size=int(rng.integers(0, NEAR_JOIN_THRESHOLD // 2 + 1)), replace=False).tolist()
            rows.append((f"S{int(rng.integers(0, n_subjects))}", labels[int(rng.integers(0, 3))]))
            hashes.append(_flip(centre, flips))
            cluster.append(f"c{c}")
    ids = [f"i{n:03d}" for n in range(len(rows))]
    columns = {f.name: [None] * len(rows) for f in images_schema()}
    columns.update({"image_id": ids, "dataset": ["fake"] * len(rows), "path": [f"{i}.png" for i in ids],
                    "label": [lab for _, lab in rows], "subject_id": [s for s, _ in rows],
                    "content_hash": [f"h{i}" for i in ids], "readable": [True] * len(rows)})
    table = pa.table(columns, schema=images_schema())
    return table, dict(zip(ids, hashes)), dict(zip(ids, cluster))


GROUPED = [("spi", {"folds": 2}, None), ("loso", {}, None), ("kfold", {"folds": 2}, "subject"),
           ("kfold", {"folds": 2}, None), ("ppi", {"test_size": 0.3}, None), ("sps", {"test_size": 0.3}, None)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=manifests_with_clusters())
def test_no_near_duplicate_cluster_straddles_roles(data):
    table, hashes, cluster = data
    for protocol, options, group_by in GROUPED:
        proto = create_protocol(protocol, grouped=bool(group_by), **options)
        frame, _, group_column, _ = build_frame("fake", "fake", table, proto, None, group_by)
        packed = np.array([hashes[i] for i in frame["image_id"]], dtype=np.uint64)
        pairs = near_pairs(packed, np.ones(len(packed), dtype=bool), NEAR_JOIN_THRESHOLD)
        join_near_duplicates(frame, pairs, group_column)
        try:
            fold_roles = assign_roles(frame, proto)
        except FerdataError:  # too few groups left for the folds: nothing to check
            continue
        members = frame["image_id"].map(cluster).to_numpy(dtype=object)
        for roles in fold_roles:
            per_cluster = pd.DataFrame({"c": members, "r": roles}).dropna(subset=["c"]).groupby("c")["r"].nunique()
            assert (per_cluster == 1).all(), (protocol, group_by, per_cluster.to_dict())
