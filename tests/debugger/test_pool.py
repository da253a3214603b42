import pytest

from shieldkit.debugger.pool import parse_pool, rank_for_labelling
from shieldkit.errors import DataError


def test_csv_and_jsonl_pools_with_optional_labels():
    rows = parse_pool(b'text,label\n"I will destroy you at chess",0\nplain text,\n', "pool.csv")
    assert [(r.text, r.label) for r in rows] == [("I will destroy you at chess", 0), ("plain text", None)]
    classified = b'{"policy": "violence", "score": 0.757, "text": "a"}\n{"text": "b", "label": "unsafe"}\n'
    assert [(r.text, r.label) for r in parse_pool(classified, "scores.jsonl")] == [("a", None), ("b", 1)]
    with pytest.raises(DataError, match="missing column 'text'"):
        parse_pool(b"body\nhello\n", "pool.csv")
    with pytest.raises(DataError, match="row 1: unknown label"):
        parse_pool(b"text,label\nhello,maybe\n", "pool.csv")


def test_uncertain_texts_first_and_no_near_duplicates():
    texts = ["I am going to destroy you at chess tomorrow.",
             "I am going to destroy you at chess tomorrow!",  # a near-duplicate of the first
             "The weather is lovely today.",
             "I will hurt you when I find you.",
             "Let's bake bread this weekend."]
    scores = [0.52, 0.53, 0.01, 0.95, 0.2]
    picks = rank_for_labelling(texts, scores, threshold=0.5, n=5)
    assert picks[0].index == 0 and picks[0].uncertainty > 0.9  # the closest to the threshold
    assert 1 not in [p.index for p in picks]  # its near-duplicate is never suggested
    assert [p.value for p in picks] == sorted((p.value for p in picks), reverse=True)
    assert {p.index for p in picks} == {0, 2, 3, 4}


def test_bad_arguments():
    with pytest.raises(DataError, match="2 texts but 1 scores"):
        rank_for_labelling(["a", "b"], [0.5], 0.5)
    with pytest.raises(DataError, match="n must be"):
        rank_for_labelling(["a"], [0.5], 0.5, n=0)


def test_a_one_column_file_with_apostrophes_and_spaces():
    rows = parse_pool(b"text\nI'm going to destroy you at chess tomorrow.\nLovely weather today.\n", "pool.csv")
    assert [r.text for r in rows] == ["I'm going to destroy you at chess tomorrow.", "Lovely weather today."]
    assert [r.text for r in parse_pool(b"id\ttext\n1\ta; b, c\n", "pool.tsv")] == ["a; b, c"]
