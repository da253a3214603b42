import json

import pytest

from shieldkit.classifiers.data import from_pairs, load_examples
from shieldkit.errors import DataError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_and_label_words(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nbad words,unsafe\nnice words,safe\nmore bad,TRUE\nmore nice,0\n")
    data = load_examples(path)
    assert data.labels == [1, 0, 1, 0]
    assert data.texts[0] == "bad words"
    assert [e.line for e in data.examples] == [2, 3, 4, 5]


def test_semicolon_csv_with_other_columns(tmp_path):
    path = write(tmp_path, "d.csv", "comment;isHate\nyou people are awful;1.0\nlovely day;0.0\n")
    data = load_examples(path, text_column="comment", label_column="isHate")
    assert data.labels == [1, 0]


def test_missing_column_names_what_was_found(tmp_path):
    path = write(tmp_path, "d.csv", "text,verdict\nx,1\n")
    with pytest.raises(DataError, match=r"missing column 'label' \(found: text, verdict\)"):
        load_examples(path)


def test_jsonl_missing_key_has_line_number(tmp_path):
    path = write(tmp_path, "d.jsonl", json.dumps({"text": "a", "label": 1}) + "\n\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(DataError, match=r"line 3: missing key 'label'"):
        load_examples(path)


def test_invalid_json_line(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a", "label": 1}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"line 2: invalid JSON"):
        load_examples(path)


def test_empty_text_has_line_number(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nfine,0\n   ,1\n")
    with pytest.raises(DataError, match=r"d.csv: line 3: empty text"):
        load_examples(path)


def test_unknown_label(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nfine,0\nhmm,maybe\n")
    with pytest.raises(DataError, match=r"line 3: unknown label 'maybe'"):
        load_examples(path)


def test_single_class_is_refused(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\na,1\nb,1\nc,yes\n")
    with pytest.raises(DataError, match=r"all 3 examples are labelled 1 \(violates\).*none is labelled 0"):
        load_examples(path)


def test_duplicates_are_reported_and_dropped(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nsame,1\nother,0\nsame,1\n")
    data = load_examples(path)
    assert len(data) == 2
    assert data.duplicates == ("line 4 repeats line 2 (dropped)",)


def test_conflicting_duplicates_are_an_error(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nsame,1\nother,0\nsame,0\n")
    with pytest.raises(DataError, match=r"line 4: the same text as line 2 with the opposite label"):
        load_examples(path)


def test_wrong_field_count_and_empty_and_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"line 3: 3 fields, the header has 2"):
        load_examples(write(tmp_path, "d.csv", "text,label\na,1\nb,0,extra\n"))
    with pytest.raises(DataError, match="the file is empty"):
        load_examples(write(tmp_path, "e.csv", "\n"))
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "missing.csv")


def test_pairs_and_fingerprint():
    a = from_pairs([("x", 1), ("y", 0)])
    b = from_pairs([("x", 1), ("y", 0)])
    c = from_pairs([("x", 1), ("y", 1), ("z", 0)])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    with pytest.raises(DataError, match="item 2: text must be a string"):
        from_pairs([("x", 1), (5, 0)])
