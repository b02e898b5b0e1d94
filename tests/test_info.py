"""What ``ferdata info`` counts: copies, label conflicts, subjects and unreadable files."""

from __future__ import annotations

import shutil
from pathlib import Path

from ferdata.engines import InlineExecutor
from ferdata.info import summarize
from ferdata.ingest import ingest
from tests.datasets.fakes import image


def test_copies_conflicts_subjects_and_unreadable_files_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    a = image(src / "happy" / "KA.1.png", seed=1)
    (src / "sad").mkdir()
    shutil.copy(a, src / "sad" / "KA.2.png")  # one photo, two labels
    shutil.copy(a, src / "happy" / "KB.3.png")  # and a third copy
    b = image(src / "happy" / "KB.4.png", seed=2)
    shutil.copy(b, src / "happy" / "xx5.png")  # same label: a copy, no conflict (and no subject)
    image(src / "fear" / "KC.6.png", seed=3)
    (src / "fear" / "KC.7.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    m = ingest("folder", src, name="m", manifests=tmp_path / "m", executor=InlineExecutor(),
               subject_pattern=r"^(?P<subject>[A-Z]{2})\.").manifest

    s = summarize(m, sections=False)

    assert s["n_images"] == 7
    assert s["labels"] == {"fear": {"(none)": 2}, "happy": {"(none)": 4}, "sad": {"(none)": 1}}
    assert s["duplicates"] == {"groups": 2, "images": 5, "extra_copies": 3}
    assert s["n_conflicts"] == 1
    assert s["conflicts"] == [{"content_hash": s["conflicts"][0]["content_hash"],
                               "paths": ["happy/KA.1.png", "happy/KB.3.png", "sad/KA.2.png"],
                               "labels": ["happy", "sad"]}]
    assert s["subjects"] == {"n_subjects": 3, "images_without_subject": 1,
                             "images_per_subject": {"min": 2, "median": 2, "max": 2}}
    assert s["n_unreadable"] == 1 and s["unreadable"][0]["path"] == "fear/KC.7.png"
    assert s["unreadable"][0]["error"]
