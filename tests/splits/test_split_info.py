"""The ``ferdata info --split`` sections."""

from __future__ import annotations

import pytest

from ferdata import info
from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.splits import make_split
from ferdata.splits.info import info_sections
from tests.splits.fakes import people


def test_no_split_asked_no_sections(fake_manifest):
    assert info_sections(fake_manifest(people())) == []


def test_sections_count_classes_per_fold_and_role(fake_manifest):
    m = fake_manifest(people(n_subjects=4))
    make_split(m, "loso", val_size=0.34, executor=InlineExecutor())
    sections = info.summarize(m, split="loso")["sections"]
    titles = [s["title"] for s in sections]
    assert titles == ["split loso", "split loso: class counts per fold and role", "split loso: leakage audit per fold"]
    counts = sections[1]
    assert counts["columns"] == ["fold", "role", "anger", "happy", "sad", "total"]
    by_fold: dict[int, int] = {}
    for fold, role, *per_class, total in counts["rows"]:
        assert sum(per_class) == total
        by_fold[fold] = by_fold.get(fold, 0) + total
        if role == "test":
            assert per_class == [2, 2, 2]  # one subject: two images of each label
    assert by_fold == {0: 24, 1: 24, 2: 24, 3: 24}
    assert {r[1] for r in counts["rows"]} == {"train", "val", "test"}
    assert len(sections[2]["rows"]) == 4
    summary = dict(sections[0]["rows"])
    assert summary["protocol"] == "loso" and summary["folds"] == 4


def test_an_unknown_split_is_one_line(fake_manifest):
    with pytest.raises(FerdataError, match="has no split 'nope'"):
        info.summarize(fake_manifest(people()), split="nope")


def test_roles_agree_with_the_split_module():
    from ferdata.splits import make
    from ferdata.splits import info as split_info

    assert split_info.ROLES == make.ROLES
