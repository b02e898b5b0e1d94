import pytest

from ferdata.errors import FerdataError, UnknownLabelError
from ferdata.labels import (AFFECTNET_CODES, CKPLUS_CODES, CLASS_SETS, EMOTIONS, FER2013_CODES, JAFFE_CODES,
                            SFEW_NAMES, SFEW_XLSX_CODES, SYNONYMS, VOCABULARY, canonical, class_set, parse_label_map)


@pytest.mark.parametrize("table", [FER2013_CODES, CKPLUS_CODES, JAFFE_CODES, SFEW_NAMES, SFEW_XLSX_CODES,
                                   AFFECTNET_CODES, SYNONYMS])
def test_every_code_map_lands_in_the_vocabulary(table):
    assert set(table.values()) <= set(VOCABULARY)


def test_dataset_codes_as_documented():
    assert [FER2013_CODES[str(i)] for i in range(7)] == ["anger", "disgust", "fear", "happy", "sad", "surprise",
                                                         "neutral"]
    assert [CKPLUS_CODES[str(i)] for i in range(8)] == list(EMOTIONS)
    assert [AFFECTNET_CODES[str(i)] for i in range(11)] == [
        "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt", "none", "uncertain", "nonface"]
    assert SFEW_XLSX_CODES["4"] == "happy" and SFEW_XLSX_CODES["7"] == "surprise"


def test_canonical_names_the_fix():
    with pytest.raises(UnknownLabelError, match=r"jaffe: unknown label 'XX'.*label_map 'XX=<label>'"):
        canonical("XX", JAFFE_CODES, dataset="jaffe")


def test_label_map_parsing():
    assert parse_label_map("joy=happy, mad=anger") == {"joy": "happy", "mad": "anger"}
    with pytest.raises(FerdataError, match="not a known label"):
        parse_label_map("joy=glee")
    with pytest.raises(FerdataError, match="RAW=LABEL"):
        parse_label_map("joy")


def test_class_sets():
    assert CLASS_SETS["6"].classes == ("anger", "disgust", "fear", "happy", "sad", "surprise")
    assert "contempt" not in CLASS_SETS["7"].classes and "neutral" in CLASS_SETS["7"].classes
    assert "neutral" not in CLASS_SETS["7-no-neutral"].classes
    three = CLASS_SETS["3"]
    assert three.classes == ("positive", "neutral", "negative")
    assert three.mapping["surprise"] == "neutral" and three.mapping["contempt"] == "negative"
    assert three.index("happy") == 0 and not three.includes("none")
    assert class_set("happy,sad").classes == ("happy", "sad")
    assert class_set(None, present=["sad", "happy", "none"]).classes == ("happy", "sad")
    with pytest.raises(FerdataError, match="unknown label"):
        class_set("happy,glee")
    cs = class_set("3")
    assert type(cs).from_dict(cs.to_dict()) == cs
