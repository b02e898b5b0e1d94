"""Every registered adapter ingests its fake dataset; then each adapter's own rules."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ferdata.datasets import detect_dataset, list_datasets
from ferdata.engines import InlineExecutor, ProcessPoolExecutor
from ferdata.errors import FerdataError, LayoutError, UnknownLabelError
from ferdata.ingest import ingest
from ferdata.manifest import IMAGE_COLUMNS, Manifest, validate_images
from tests.datasets.fakes import FAKES, write_fake


def run(dataset: str, source: Path, tmp_path: Path, **kw):
    kw.setdefault("executor", InlineExecutor())
    return ingest(dataset, source, manifests=tmp_path / "m", **kw)


def test_every_adapter_has_a_fake():
    assert set(list_datasets()) == set(FAKES)


@pytest.mark.parametrize("name", list_datasets())
def test_fake_dataset_ingests(name, tmp_path):
    exp = write_fake(name, tmp_path / "src")
    res = run(name, exp.source, tmp_path, **exp.options)
    table = res.manifest.images()
    assert table.num_rows == exp.n_images
    assert table.column_names[: len(IMAGE_COLUMNS)] == list(IMAGE_COLUMNS)
    assert validate_images(table) == []
    assert Counter(table.column("label").to_pylist()) == exp.labels
    subjects = {s for s in table.column("subject_id").to_pylist() if s}
    assert len(subjects) == exp.n_subjects
    if exp.source_splits:
        assert Counter(table.column("source_split").to_pylist()) == exp.source_splits
    meta = res.manifest.metadata()
    assert meta["dataset"] == name and meta["ferdata_version"] and meta["created_at"]
    readable = table.filter(table.column("readable"))
    assert all(len(h) == 64 for h in readable.column("content_hash").to_pylist())
    assert all(w > 0 for w in readable.column("width").to_pylist())


@pytest.mark.parametrize("name", list_datasets())
def test_image_ids_are_stable_and_pool_matches_inline(name, tmp_path):
    exp = write_fake(name, tmp_path / "src")
    a = run(name, exp.source, tmp_path / "a", **exp.options).manifest.images()
    b = run(name, exp.source, tmp_path / "b", executor=ProcessPoolExecutor(2), **exp.options).manifest.images()
    for col in ("image_id", "path", "label", "content_hash", "width", "height", "mode", "readable", "error"):
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), col


@pytest.mark.parametrize("name", [n for n in list_datasets() if n != "folder"])
def test_layout_is_detected(name, tmp_path):
    exp = write_fake(name, tmp_path / "src")
    assert detect_dataset(exp.source) == name


# --- jaffe ------------------------------------------------------------------------------------

def test_jaffe_ratings_are_joined_and_unused_rows_reported(tmp_path):
    exp = write_fake("jaffe", tmp_path / "src")
    res = run("jaffe", exp.source, tmp_path)
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    ka_an = rows["KA.AN1.39.tiff"]
    assert ka_an["subject_id"] == "KA" and ka_an["label_raw"] == "AN" and ka_an["pose"] == 1
    assert ka_an["rating_anger"] == pytest.approx(4.5) and ka_an["rating_top"] == "anger"
    assert rows["KL.NE1.155.tiff"]["rating_top"] == "sad"  # the neutral face rated sad highest
    assert res.report["ratings_without_image"] == ["YM-FE9"]
    assert res.skipped == Counter({"not an image": 2, "hidden": 1})  # README, ratings.txt, .DS_Store


def test_jaffe_unparseable_name_is_a_row_not_an_abort(tmp_path):
    exp = write_fake("jaffe", tmp_path / "src")
    shutil.copy(exp.source / "KA.AN1.39.tiff", exp.source / "portrait.tiff")
    res = run("jaffe", exp.source, tmp_path)
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    stray = rows["portrait.tiff"]
    assert res.n_rows == 6 and stray["readable"] and stray["label"] is None and stray["subject_id"] is None
    assert stray["name_error"].startswith("name not like KA.AN1.39.tiff")
    assert rows["KA.AN1.39.tiff"]["name_error"] is None
    assert (res.name_errors, res.name_error_paths) == (1, ["portrait.tiff"])
    skipped = run("jaffe", exp.source, tmp_path / "skip", skip_unknown=True)
    assert skipped.n_rows == 5 and skipped.name_errors == 0
    reason = next(k for k in skipped.skipped if k.startswith("name not like"))
    assert skipped.skipped[reason] == 1 and skipped.skipped.first_paths()[reason] == ["portrait.tiff"]


def test_jaffe_bad_ratings_file(tmp_path):
    exp = write_fake("jaffe", tmp_path / "src")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3 KA-AN1\n2 x y z\n")
    with pytest.raises(FerdataError, match="ratings .*line 2"):
        run("jaffe", exp.source, tmp_path, ratings=bad)


# --- ckplus -----------------------------------------------------------------------------------

def test_ckplus48_columns_and_last_frame(tmp_path):
    exp = write_fake("ckplus", tmp_path / "src")
    rows = run("ckplus", exp.source, tmp_path).manifest.images().to_pylist()
    r = next(r for r in rows if r["path"] == "anger/S010_000_00000018.png")
    assert (r["subject_id"], r["sequence_id"], r["frame"], r["label"], r["label_raw"]) == (
        "S010", "S010_000", 18, "anger", "anger")
    last = run("ckplus", exp.source, tmp_path / "last", frames="last").manifest.images()
    assert last.num_rows == 4 and set(last.column("frame").to_pylist()) == {19}


def write_original_ckplus(root: Path) -> None:
    from tests.datasets.fakes import image

    for subj, seq, code, n in (("S005", "001", "3.0000000e+00", 5), ("S010", "002", "7.0000000e+00", 4),
                               ("S010", "003", None, 3)):
        for f in range(1, n + 1):
            image(root / "cohn-kanade-images" / subj / seq / f"{subj}_{seq}_{f:08d}.png", (16, 16),
                  seed=hash((subj, seq, f)) % 1000)
        if code:
            d = root / "Emotion" / subj / seq
            d.mkdir(parents=True)
            (d / f"{subj}_{seq}_{n:08d}_emotion.txt").write_text(f"   {code}\n")


def test_ckplus_original_layout_frames_and_neutral(tmp_path):
    write_original_ckplus(tmp_path / "ck")
    res = run("ckplus", tmp_path / "ck", tmp_path, frames="last", neutral="first")
    rows = res.manifest.images().to_pylist()
    assert sorted((r["sequence_id"], r["frame"], r["label"], r["label_raw"]) for r in rows) == [
        ("S005_001", 1, "neutral", "0"), ("S005_001", 5, "disgust", "3"),
        ("S010_002", 1, "neutral", "0"), ("S010_002", 4, "surprise", "7")]
    assert res.report["unlabelled_sequences"] == 1
    assert run("ckplus", tmp_path / "ck", tmp_path / "b").n_rows == 6  # last3, no neutral


def test_ckplus_bad_options(tmp_path):
    exp = write_fake("ckplus", tmp_path / "src")
    with pytest.raises(FerdataError, match="frames 'peak'"):
        run("ckplus", exp.source, tmp_path, frames="peak")
    with pytest.raises(FerdataError, match="neutral first needs the original"):
        run("ckplus", exp.source, tmp_path, neutral="first")
    with pytest.raises(FerdataError, match="ratings does not apply to ckplus"):
        run("ckplus", exp.source, tmp_path, ratings="x.txt")


# --- sfew -------------------------------------------------------------------------------------

def test_sfew_subjects_movies_and_xlsx(tmp_path):
    exp = write_fake("sfew", tmp_path / "src")
    res = run("sfew", exp.source, tmp_path)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in res.manifest.images().to_pylist()}
    hp = rows["HarryPotter_Deathly_Hallows_1_001610960_00000028.png"]
    assert (hp["movie"], hp["subject_id"], hp["clip"], hp["character"]) == (
        "HarryPotter_Deathly_Hallows_1", "00000028", "HarryPotter_Deathly_Hallows_1_001610960", "00000028")
    odd = rows["OceansTwelve-001817760_00000003.png"]
    assert (odd["movie"], odd["clip"], odd["subject_id"]) == ("OceansTwelve", "OceansTwelve_001817760", "00000003")
    assert rows["IAmSam_013827920__00000004.png"]["clip"] == "IAmSam_013827920"
    assert res.warnings["irregular file name, read leniently"] == 2
    # a counted warning keeps the names it counts, in the result and in the table's metadata
    odd_names = ["Images/Surprise/IAmSam_013827920__00000004.png", "Images/Surprise/OceansTwelve-001817760_00000003.png"]
    assert res.warnings.first_paths()["irregular file name, read leniently"] == odd_names
    assert res.manifest.metadata()["warnings_first"]["irregular file name, read leniently"] == odd_names
    assert all(r["name_error"] is None for r in rows.values())
    hang = rows["Hangover_010805134_00000019.png"]
    assert hang["lpq_pc1"] == 0.0 and hang["phog_pc5"] == pytest.approx(0.9)
    assert hp["lpq_pc1"] is None
    assert res.report["xlsx_rows"] == 3 and res.report["xlsx_rows_without_image"] == 1
    assert res.report["images_without_xlsx_row"] == 3


def test_sfew2_layout_splits(tmp_path):
    from tests.datasets.fakes import image

    for split, emo, f in (("Train", "Happy", "A_000000001_00000001.png"), ("Val", "Sad", "B_000000002_00000002.png")):
        image(tmp_path / "s2" / split / emo / f, seed=len(f) + len(split))
    rows = run("sfew", tmp_path / "s2", tmp_path).manifest.images().to_pylist()
    assert sorted((r["source_split"], r["label"]) for r in rows) == [("train", "happy"), ("val", "sad")]


def test_sfew_wrong_layout(tmp_path):
    (tmp_path / "x" / "stuff").mkdir(parents=True)
    with pytest.raises(LayoutError, match="sfew expects Images/<Emotion>"):
        run("sfew", tmp_path / "x", tmp_path)


# --- fer2013 ----------------------------------------------------------------------------------

def test_fer2013_csv_rows_become_pngs_and_bad_row_is_flagged(tmp_path):
    exp = write_fake("fer2013", tmp_path / "src")
    res = run("fer2013", exp.source, tmp_path)
    m = res.manifest
    rows = m.images().to_pylist()
    bad = [r for r in rows if not r["readable"]]
    assert len(bad) == 1 and "100 pixel values, expected 2304" in bad[0]["error"] and bad[0]["csv_row"] == 4
    good = rows[0]
    assert (good["width"], good["height"], good["mode"]) == (48, 48, "L")
    assert m.resolve(good["path"]).is_file() and m.image_root == m.dir / "images"


def test_fer2013_folder_variant(tmp_path):
    from tests.datasets.fakes import image

    for rel in ("train/happy/Training_1.jpg", "test/sad/PublicTest_2.jpg", "test/sad/PrivateTest_3.jpg"):
        image(tmp_path / "f" / rel, (48, 48), seed=len(rel), fmt="JPEG")
    rows = run("fer2013", tmp_path / "f", tmp_path).manifest.images().to_pylist()
    assert sorted(r["source_split"] for r in rows) == ["PrivateTest", "PublicTest", "Training"]


def test_fer2013_bad_header(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LayoutError, match="emotion,pixels,Usage"):
        run("fer2013", p, tmp_path)


# --- ferplus ---------------------------------------------------------------------------------

@pytest.mark.parametrize("votes, rule, winner", [
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "majority", None),        # 4 of 10 is no majority
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "plurality", "neutral"),
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "ferplus", None),         # 4 of 9 after dropping the single vote
    ((5, 0, 0, 5, 0, 0, 0, 0, 0, 0), "majority", None),        # a tie has no winner under any rule
    ((5, 0, 0, 5, 0, 0, 0, 0, 0, 0), "plurality", None),
    ((5, 1, 1, 1, 1, 0, 0, 0, 1, 0), "majority", "neutral"),   # exactly half
    ((5, 1, 1, 1, 1, 0, 0, 0, 1, 0), "ferplus", "neutral"),    # 5 of 5 once single votes go
    ((4, 2, 1, 1, 1, 0, 0, 0, 1, 0), "ferplus", "neutral"),    # 4 of 6 > half
    ((4, 2, 1, 1, 1, 0, 0, 0, 1, 0), "majority", None),
    ((0, 0, 0, 0, 0, 0, 0, 0, 6, 4), "majority", "uncertain"),
    ((0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "plurality", None),
])
def test_ferplus_label_rules(votes, rule, winner):
    from ferdata.datasets.ferplus import VOTE_LABELS, vote_winner

    got = vote_winner(votes, rule)
    assert (None if got is None else VOTE_LABELS[got]) == winner


def test_ferplus_folders_keep_votes_box_and_rule(tmp_path):
    exp = write_fake("ferplus", tmp_path / "src")
    res = run("ferplus", exp.source, tmp_path)
    rows = {r["ferplus_name"]: r for r in res.manifest.images().to_pylist()}
    first = rows["fer0000000.png"]
    assert first["label"] is None and first["label_raw"] == "no majority winner"
    assert [first[f"votes_{c}"] for c in ("neutral", "happy", "sad", "anger", "disgust")] == [4, 0, 1, 3, 2]
    assert rows["fer0000001.png"]["label"] == "neutral" and rows["fer0000001.png"]["label_raw"] == "neutral"
    assert rows["fer0000002.png"]["label"] == "nonface" and rows["fer0000002.png"]["votes_nonface"] == 9
    assert rows["fer0032221.png"]["label"] == "uncertain"
    assert rows["fer0032220.png"]["path"] == "FER2013Test/fer0032220.png"
    assert (rows["fer0032220.png"]["face_width"], rows["fer0032220.png"]["face_height"]) == (48, 48)
    assert res.report["no winner under the label rule"] == 1
    # plurality labels the split vote; the paper's rule does not
    plural = run("ferplus", exp.source, tmp_path / "p", label_rule="plurality").manifest.images().to_pylist()
    assert {r["ferplus_name"]: r["label"] for r in plural}["fer0000000.png"] == "neutral"
    with pytest.raises(FerdataError, match="label_rule 'vote'"):
        run("ferplus", exp.source, tmp_path / "x", label_rule="vote")


def test_ferplus_bad_rows_are_rows_with_errors(tmp_path):
    exp = write_fake("ferplus", tmp_path / "src")
    with open(exp.source / "FER2013Train" / "label.csv", "a") as fh:
        fh.write('fer0000009.png,"(0, 0, 48, 48)",1,2,x,0,0,0,0,0,0,0\n')
        fh.write('fer0000010.png,"(0, 0, 48, 48)",1,2\n')
        fh.write('../../etc/passwd,"(0, 0, 48, 48)",1,0,0,0,0,0,0,0,0,9\n')
    rows = run("ferplus", exp.source, tmp_path).manifest.images().to_pylist()
    errors = {r["path"]: r["error"] for r in rows if r["error"]}
    assert "not a number" in errors["FER2013Train/fer0000009.png"]
    assert "2 vote counts, expected 10" in errors["FER2013Train/fer0000010.png"]
    assert any("outside its folder" in e for e in errors.values())
    assert len(rows) == 9 and sum(r["readable"] for r in rows) == 6


def test_ferplus_csv_pair_beside_fer2013(tmp_path):
    from tests.datasets.fakes import write_ferplus_csvs

    root = write_ferplus_csvs(tmp_path / "src")
    assert detect_dataset(root) == "ferplus"               # not fer2013: the votes file is there
    assert detect_dataset(root / "fer2013.csv") == "fer2013"
    res = run("ferplus", root / "fer2013new.csv", tmp_path)
    rows = res.manifest.images().to_pylist()
    assert [r["path"] for r in rows] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert [r["label"] for r in rows] == ["anger", "nonface", "happy", "nonface"]
    assert [r["fer2013_label"] for r in rows] == ["anger", "happy", "neutral", "surprise"]
    assert [r["ferplus_name"] for r in rows] == ["fer0000000.png", "fer0000001.png", "fer0028710.png", None]
    assert [r["source_split"] for r in rows] == ["Training", "Training", "PublicTest", "PrivateTest"]
    assert all(r["readable"] and r["width"] == 48 for r in rows)
    assert (res.manifest.dir / "images" / "00002.png").is_file()
    (root / "fer2013.csv").unlink()
    with pytest.raises(FerdataError, match="needs fer2013.csv beside it"):
        run("ferplus", root, tmp_path / "again")


def test_ferplus_wrong_header(tmp_path):
    from tests.datasets.fakes import write_ferplus_csvs

    root = write_ferplus_csvs(tmp_path / "src")
    (root / "fer2013new.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LayoutError, match="Usage,Image name"):
        run("ferplus", root, tmp_path)


# --- affectnet --------------------------------------------------------------------------------

def test_affectnet_extras_and_outside_paths(tmp_path):
    exp = write_fake("affectnet", tmp_path / "src")
    with open(exp.source / "validation.csv", "a") as fh:
        fh.write("../../etc/passwd,1,1,1,1,,1,0,0\n")
    res = run("affectnet", exp.source, tmp_path)
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    first = rows["100/img0.jpg"]
    assert first["valence"] is None and first["arousal"] == pytest.approx(0.25)  # -2 means absent
    assert (first["face_x"], first["face_width"]) == (2, 18) and len(first["landmarks"]) == 136
    assert rows["102/img2.jpg"]["label"] == "none"
    evil = rows["../../etc/passwd"]
    assert not evil["readable"] and "outside the image root" in evil["error"] and evil["content_hash"] is None


# --- folder -----------------------------------------------------------------------------------

def test_folder_unknown_label_folder_names_the_fix(tmp_path):
    exp = write_fake("folder", tmp_path / "src")
    from tests.datasets.fakes import image

    image(exp.source / "Smirk" / "EF.1.png", seed=9)
    with pytest.raises(UnknownLabelError) as err:
        run("folder", exp.source, tmp_path)
    assert "'Smirk'" in str(err.value) and "label_map 'Smirk=<label>'" in str(err.value)
    assert "\n" not in str(err.value)
    assert run("folder", exp.source, tmp_path, label_map="Smirk=contempt").labels["contempt"] == 1
    res = run("folder", exp.source, tmp_path / "s", skip_unknown=True)
    assert res.n_rows == 3 and res.skipped["unknown label Smirk"] == 1


def test_folder_label_folders_are_cut_at_their_own_files(tmp_path):
    """Label folders are read as runs of the sorted paths: a folder whose name extends
    another's (``happy.d`` sorts before ``happy/``), a subfolder, files at the root and an
    unknown folder must each land where one file at a time would put them."""
    from tests.datasets.fakes import image

    src = tmp_path / "src"
    for k, rel in enumerate(["angry/AB_1.png", "angry/zz.png", "happy.d/CD_2.png", "happy/EF_3.png",
                             "happy/sub/GH_4.png", "happy!/IJ_5.png", "happy.png", "zz.png", "weird/KL_6.png"]):
        image(src / rel, (8, 8), seed=k)
    res = run("folder", src, tmp_path, skip_unknown=True, subject_pattern=r"^(?P<subject>[A-Z]{2})_")
    rows = [(r["path"], r["label_raw"], r["label"], r["subject_id"]) for r in res.manifest.images().to_pylist()]
    assert rows == [("angry/AB_1.png", "angry", "anger", "AB"), ("angry/zz.png", "angry", "anger", None),
                    ("happy/EF_3.png", "happy", "happy", "EF"), ("happy/sub/GH_4.png", "happy", "happy", "GH")]
    assert res.skipped == {"not inside a label folder": 2, "unknown label happy!": 1, "unknown label happy.d": 1,
                           "unknown label weird": 1}
    assert res.skipped.firsts["not inside a label folder"] == ["happy.png", "zz.png"]
    assert res.warnings.firsts == {"file name does not match --subject-pattern": ["angry/zz.png"]}


def test_folder_csv_with_subjects_and_root_escape(tmp_path):
    exp = write_fake("folder", tmp_path / "src")
    (tmp_path / "list.csv").write_text("path,label,subject\nHappy/AB.1.png,happiness,p1\nangry/CD.1.jpg,angry,\n"
                                       "../outside.png,sad,p2\n")
    res = run("folder", exp.source, tmp_path, csv=(str(tmp_path / "list.csv"),),
              subject_pattern=r"^(?P<subject>[A-Z]{2})\.")
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    assert rows["Happy/AB.1.png"]["subject_id"] == "p1" and rows["Happy/AB.1.png"]["label"] == "happy"
    assert rows["angry/CD.1.jpg"]["subject_id"] == "CD"
    assert not rows["../outside.png"]["readable"] and "points outside" in rows["../outside.png"]["error"]


def test_folder_subject_pattern_needs_named_group(tmp_path):
    exp = write_fake("folder", tmp_path / "src")
    with pytest.raises(FerdataError, match="named group"):
        run("folder", exp.source, tmp_path, subject_pattern=r"^([A-Z]{2})")
    with pytest.raises(FerdataError, match="not a valid regular expression"):
        run("folder", exp.source, tmp_path, subject_pattern=r"(?P<subject>[")


def test_folder_label_pattern_reads_labels_from_file_names(tmp_path):
    """An unseen set whose 5th character a-g is the expression: no hand-made CSV needed."""
    from tests.datasets.fakes import image

    src = tmp_path / "unseen"
    for i, name in enumerate(("s01_a_1.png", "s01_e_2.png", "s02_e_1.png", "s02_x_1.png", "notes.png")):
        image(src / ("sub" if i == 2 else "") / name, seed=500 + i)
    (src / "readme.txt").write_text("about this set")
    mapping = "a=anger,b=disgust,c=fear,d=happy,e=sad,f=surprise,g=neutral"
    res = run("folder", src, tmp_path, label_pattern=r"^.{4}(?P<label>[a-g])", label_map=mapping,
              subject_pattern=r"^(?P<subject>s\d\d)")
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    assert {p: (r["label_raw"], r["label"], r["subject_id"]) for p, r in rows.items()} == {
        "s01_a_1.png": ("a", "anger", "s01"), "s01_e_2.png": ("e", "sad", "s01"),
        "sub/s02_e_1.png": ("e", "sad", "s02")}
    # names that do not match are skipped and named, like every other skip
    assert res.skipped["file name does not match --label-pattern"] == 2
    assert res.skipped.first_paths()["file name does not match --label-pattern"] == ["notes.png", "s02_x_1.png"]
    assert res.skipped.first_paths()["not an image"] == ["readme.txt"]

    with pytest.raises(UnknownLabelError, match=r"s01_a_1.png: .*unknown label from the file name 'a'.*label_map"):
        run("folder", src, tmp_path / "no-map", label_pattern=r"^.{4}(?P<label>[a-g])")
    with pytest.raises(FerdataError, match=r"needs a named group \(\?P<label>"):
        run("folder", src, tmp_path, label_pattern=r"^.{4}([a-g])")
    with pytest.raises(LayoutError, match="no file name matches label_pattern"):
        run("folder", src, tmp_path, label_pattern=r"^zzz(?P<label>.)")
    with pytest.raises(FerdataError, match="use one"):
        run("folder", src, tmp_path, label_pattern=r"(?P<label>.)", csv=("x.csv",))


@pytest.mark.parametrize("body, message", [
    ("path,label\nHappy/AB.1.png,happy\nangry/CD.1.jpg,smirk\n", r"list.csv line 3: folder: unknown label 'smirk'"),
    ("path,label\nHappy/AB.1.png,happy\nangry/CD.1.jpg," + "x" * 200_000 + "\n",
     r"list.csv line 3: not valid CSV \(field larger than field limit"),
    ("path,label\nHappy/AB.1.png\n", r"list.csv line 2: expected path,label"),
])
def test_folder_csv_errors_name_the_line(tmp_path, body, message):
    exp = write_fake("folder", tmp_path / "src")
    (tmp_path / "list.csv").write_text(body)
    with pytest.raises(FerdataError, match=message):
        run("folder", exp.source, tmp_path, csv=(str(tmp_path / "list.csv"),))


def test_fer2013_and_affectnet_csv_errors_name_the_line(tmp_path):
    p = tmp_path / "fer2013.csv"
    p.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n9,1 2 3,Training\n")
    with pytest.raises(UnknownLabelError, match=r"fer2013.csv line 3: .*unknown emotion code '9'"):
        run("fer2013", p, tmp_path)
    exp = write_fake("affectnet", tmp_path / "src")
    with open(exp.source / "validation.csv", "a") as fh:
        fh.write("103/x.jpg,1,1,1,1,,42,0,0\n")
    with pytest.raises(UnknownLabelError, match=r"validation.csv line 3: .*unknown expression code '42'"):
        run("affectnet", exp.source, tmp_path)


def test_empty_source_says_which_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in list_datasets():
        if name in ("fer2013",):
            continue
        with pytest.raises(FerdataError) as err:
            run(name, tmp_path / "empty", tmp_path)
        assert "expects" in str(err.value), name


def test_manifest_written_is_plain_parquet(tmp_path):
    exp = write_fake("jaffe", tmp_path / "src")
    m = run("jaffe", exp.source, tmp_path).manifest
    assert isinstance(m, Manifest)
    assert pq.read_table(m.images_path).num_rows == 5


# --- fixed layouts: a file whose name or place cannot be read is a row, never an abort ----------

def _strays(name: str, source: Path) -> dict[str, str | None]:
    """Plant stray files in a fixed-layout fake; → {path: the label its row keeps}."""
    from tests.datasets.fakes import image

    if name == "jaffe":
        image(source / "KA AN1 39.tiff", (16, 16), seed=90)
        return {"KA AN1 39.tiff": None}
    if name == "ckplus":
        image(source / "stray.png", (48, 48), seed=91)  # beside the class folders
        image(source / "happy" / "S011 copy.png", (48, 48), seed=92)  # the folder still gives the label
        return {"stray.png": None, "happy/S011 copy.png": "happy"}
    if name == "sfew":
        image(source / "Images" / "stray.png", (20, 16), seed=93)
        image(source / "Images" / "Happy" / "frame 7.png", (20, 16), seed=94)
        return {"Images/stray.png": None, "Images/Happy/frame 7.png": "happy"}
    if name == "fer2013":
        for rel in ("train/happy/Training_1.jpg", "test/sad/PublicTest_2.jpg"):
            image(source / rel, (48, 48), seed=len(rel), fmt="JPEG")
        image(source / "train" / "Training_9.jpg", (48, 48), seed=95, fmt="JPEG")
        return {"train/Training_9.jpg": None}
    assert name == "affectnet"
    with open(source / "training.csv", "a") as fh:
        fh.write("100/img0.jpg,2,3\n")  # a short row naming a real file ...
    image(source / "Manually_Annotated_Images" / "104" / "img4.jpg", (24, 24), seed=96, fmt="JPEG")
    with open(source / "validation.csv", "a") as fh:  # ... and a box that is not a number
        fh.write("104/img4.jpg,x,3,18,18,,1,0.5,0.25\n")
    return {"104/img4.jpg": "happy"}


@pytest.mark.parametrize("name", ["jaffe", "ckplus", "sfew", "fer2013", "affectnet"])
def test_fixed_layout_strays_become_rows_with_name_error(name, tmp_path):
    if name == "fer2013":
        source = tmp_path / "src"
    else:
        source = write_fake(name, tmp_path / "src").source
    strays = _strays(name, source)
    res = run(name, source, tmp_path)
    rows = {r["path"]: r for r in res.manifest.images().to_pylist()}
    for path, label in strays.items():
        row = rows[path]
        assert row["name_error"], path
        assert row["readable"] and row["content_hash"], path  # read as it is
        assert row["label"] == label and row["subject_id"] is None, path
    assert res.name_errors == len([r for r in rows.values() if r["name_error"]])
    assert set(strays) <= set(res.name_error_paths)
    assert validate_images(res.manifest.images()) == []
    if name != "affectnet":  # --skip-unknown leaves them out, counted with their paths
        skipped = run(name, source, tmp_path / "skip", skip_unknown=True)
        assert skipped.n_rows == res.n_rows - len(strays) and skipped.name_errors == 0
        listed = {p for paths in skipped.skipped.first_paths().values() for p in paths}
        assert set(strays) <= listed


def test_affectnet_short_row_is_read_but_has_no_label(tmp_path):
    exp = write_fake("affectnet", tmp_path / "src")
    (exp.source / "training.csv").write_text((exp.source / "training.csv").read_text() + "100/img9.jpg,2,3\n")
    from tests.datasets.fakes import image

    image(exp.source / "Manually_Annotated_Images" / "100" / "img9.jpg", (24, 24), seed=97, fmt="JPEG")
    rows = {r["path"]: r for r in run("affectnet", exp.source, tmp_path).manifest.images().to_pylist()}
    short = rows["100/img9.jpg"]
    assert short["readable"] and short["label"] is None and "3 columns, expected 9" in short["name_error"]
