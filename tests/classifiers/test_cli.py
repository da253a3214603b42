"""The CLI end to end on the tiny random Gemma: train, classify (arguments and stdin), eval (text, JSON, plot, card)."""

import io
import json

import pytest

from shieldkit.cli import main

from .conftest import TOY_PAIRS


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_safety_folder):
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "examples.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in TOY_PAIRS), encoding="utf-8")
    out = folder / "toy"
    code = main(["train", "--data", str(data), "--policy", "toy", "--description", "toy policy", "--out", str(out),
                 "--seed", "1", "--repeats", "2", "--model", "tiny-random", "--safety-model", str(toy_safety_folder)])
    assert code == 0
    return data, out, ["--model", "tiny-random", "--safety-model", str(toy_safety_folder)]


def test_train_saves_a_folder(trained, capsys):
    _, out, _ = trained
    card = json.loads((out / "classifier.json").read_text())
    assert card["policy"] == "toy" and card["description"] == "toy policy"
    assert card["training"]["seed"] == 1 and card["training"]["cv_folds"] == 3
    assert card["training"]["cv_repeats"] == 2


def test_classify_arguments_and_stdin(trained, capsys, monkeypatch):
    _, out, model = trained
    assert main(["classify", "--classifier", str(out), *model, "first text", "second text"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["first text", "second text"]
    assert all(set(line) == {"policy", "score", "threshold", "flagged", "text"} for line in lines)
    assert all(line["flagged"] == (line["score"] >= line["threshold"]) for line in lines)
    piped_in = '{"text": "first text"}\n"second text"\nplain third\n'.encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(piped_in), encoding="utf-8"))
    assert main(["classify", "--classifier", str(out), *model]) == 0
    piped = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in piped] == ["first text", "second text", "plain third"]
    for alone, batched in zip(piped[:2], lines):  # the batch differs: equal up to float rounding
        assert alone["score"] == pytest.approx(batched["score"], abs=1e-5)


def test_eval_json_plot_and_card(trained, capsys, tmp_path):
    data, out, model = trained
    plot, card = tmp_path / "curves.png", tmp_path / "CARD.md"
    assert main(["eval", "--classifier", str(out), "--data", str(data), "--json", "--plot", str(plot),
                 "--card", str(card), *model]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"f1", "precision", "recall", "roc_auc", "pr_auc", "threshold", "n", "confusion"} <= set(result)
    assert result["n"] == len(TOY_PAIRS)
    assert sum(result["confusion"].values()) == len(TOY_PAIRS)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = card.read_text()
    for heading in ("## Intended use", "## Training data", "## Metrics", "## Known failure modes"):
        assert heading in text
    assert "3-fold cross-validated scores, averaged over 2 fold splits" in text
    assert "| examples.csv | 20 | 10 |" in text and "toy policy" in text
    assert main(["eval", "--classifier", str(out), "--data", str(data), *model]) == 0
    report = capsys.readouterr().out
    assert "ROC-AUC" in report and "actual violates" in report


@pytest.mark.parametrize(
    "content, message",
    [("text,verdict\na,1\n", "missing column 'label'"), ("text,label\na,1\nb,1\n", "all 2 examples are labelled 1"),
     ("text,label\na,1\n,0\n", "line 3: empty text"), ("text,label\na,1\nb,perhaps\n", "unknown label 'perhaps'")],
)
def test_bad_data_is_one_line_and_exit_2(tmp_path, capsys, content, message, toy_safety_folder):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    code = main(["train", "--data", str(data), "--policy", "p", "--out", str(tmp_path / "o"), "--model", "tiny-random",
                 "--safety-model", str(toy_safety_folder)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_classifier_and_bad_settings_exit_2(capsys, tmp_path):
    assert main(["classify", "--classifier", "hat", "x"]) == 2
    assert "unknown classifier 'hat'" in capsys.readouterr().err
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,1\nb,0\n")
    assert main(["train", "--data", str(data), "--policy", "p", "--out", str(tmp_path / "o"), "--folds", "1"]) == 2
    assert "TrainingConfig.cv_folds" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--policy", "p", "--out", str(tmp_path / "o"), "--model", "tiny-random",
                 "--safety-model", str(tmp_path)]) == 2
    assert "no safety model at" in capsys.readouterr().err
