import csv
import io

import pytest

from shieldkit.cli import main


def test_bad_input_is_one_line_errors(capsys, tmp_path):
    assert main(["suggest", "--classifier", "violence", "--pool", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\na,1\nb,0\n", encoding="utf-8")
    assert main(["suggest", "--classifier", "violence", "--pool", str(labelled)]) == 2
    assert "every row is labelled already" in capsys.readouterr().err
    assert main(["suggest", "--classifier", "violence", "--pool", str(labelled), "-n", "0"]) == 2
    assert "-n must be >= 1" in capsys.readouterr().err


@pytest.mark.real_model
def test_suggest_prints_a_csv_for_train(capsys, tmp_path, real_runtime):
    pool = tmp_path / "pool.csv"
    pool.write_text("text\nI'm going to destroy you at chess tomorrow.\nI'm going to destroy you at chess tomorrow!\n"
                    "Lovely weather today.\nI will find you and hurt you.\n", encoding="utf-8")
    assert main(["suggest", "--classifier", "violence", "--pool", str(pool), "-n", "3"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["text", "label", "score", "uncertainty", "novelty"]
    assert len(rows) == 3 and all(r["label"] == "" for r in rows)
    assert sum("destroy you at chess" in r["text"] for r in rows) == 1  # near-duplicates are suggested once
