"""Bad input to the classifier CLI and folders: a one-line error naming the file, line or field, refused before
the model loads where it can be, and nothing lost or half-written (tiny random Gemma)."""

import io
import json
import shutil

import pytest

from shieldkit.classifiers import load_classifier
from shieldkit.classifiers.data import load_examples
from shieldkit.cli import main
from shieldkit.errors import ConfigError

from .conftest import TOY_PAIRS


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_unicode_line_separators_are_text_not_line_breaks(tmp_path):
    rows = [{"text": "first\u2028half", "label": 1}, {"text": "page\x0cbreak", "label": 0}, {"text": "ok", "label": 0}]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\r\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    data = load_examples(jsonl)
    assert [(e.text, e.line) for e in data.examples] == [("first\u2028half", 1), ("page\x0cbreak", 2), ("ok", 3)]
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\nfirst\u2028half,1\n\"two\nlines\",0\nlast,1\n", encoding="utf-8")
    assert [e.text for e in load_examples(csv).examples] == ["first\u2028half", "two\nlines", "last"]


def test_eval_data_may_hold_one_class(tmp_path):
    path = tmp_path / "benign.csv"
    path.write_text("text,label\nhello,0\nthanks,0\n")
    assert len(load_examples(path, both_classes=False)) == 2
    with pytest.raises(ValueError, match="needs examples of both classes"):
        load_examples(path)


@pytest.mark.parametrize("value", ["50", "nan", "-0.1", "half"])
def test_threshold_must_be_a_probability(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        main(["classify", "--classifier", "hate", "--threshold", value, "x"])
    assert stopped.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_a_bad_out_is_refused_before_training(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,1\nb,0\n")
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me too")
    # no --model: the refusal has to come before the embedded model would load
    assert main(["train", "--data", str(data), "--policy", "p", "--out", str(taken)]) == 2
    assert "is a file" in _one_error_line(capsys)
    assert main(["train", "--data", str(data), "--policy", "p", "--out", str(busy)]) == 2
    assert "holds no saved classifier" in _one_error_line(capsys)
    assert taken.read_text() == "keep me" and (busy / "mine.txt").read_text() == "keep me too"


def test_saving_over_a_classifier_replaces_it_whole(toy_classifier, tmp_path, tiny_runtime, toy_safety):
    folder = tmp_path / "clf"
    toy_classifier.save(folder)
    toy_classifier.save(folder)  # a second save replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]  # no staging folder left behind
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.json", "head.safetensors"]
    assert load_classifier(folder, tiny_runtime, safety=toy_safety[0]).threshold == pytest.approx(toy_classifier.threshold)


def test_a_failed_save_leaves_the_old_classifier(toy_classifier, tmp_path, monkeypatch):
    import errno

    import safetensors.torch

    folder = tmp_path / "clf"
    toy_classifier.save(folder)
    before = (folder / "classifier.json").read_text()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(ConfigError, match="cannot save the classifier to .*No space left on device"):
        toy_classifier.save(folder)
    assert (folder / "classifier.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "head.safetensors").write_bytes((f / "head.safetensors").read_bytes()[:40]), "unreadable classifier head weights"),
    (lambda f: _rewrite_head(f, drop="bias"), "holds the tensors bias and weight"),
    (lambda f: _rewrite_head(f, bias_shape=(2,)), r"head bias shape \(2,\) should be \(\)"),
    (lambda f: _edit_card(f, threshold="0.5"), "HeadCard.threshold must be a probability"),
    (lambda f: _edit_card(f, threshold=7), "HeadCard.threshold must be a probability"),
    (lambda f: _edit_card(f, format_version="2.0"), "format_version must be a whole number"),
    (lambda f: _edit_card(f, calibration={"slope": "1", "intercept": 0.0}), "calibration.slope must be a finite number"),
])
def test_a_damaged_classifier_folder_is_a_clear_error(toy_folder, tmp_path, tiny_runtime, toy_safety, damage, message):
    folder = tmp_path / "clf"
    shutil.copytree(toy_folder, folder)
    damage(folder)
    with pytest.raises(ConfigError, match=message):
        load_classifier(folder, tiny_runtime, safety=toy_safety[0])


def test_a_truncated_adapter_config_is_a_clear_error(toy_safety_folder, tiny_runtime, tmp_path):
    from shieldkit.classifiers import load_safety_model

    other = tmp_path / "safety"
    shutil.copytree(toy_safety_folder, other)
    (other / "adapter_config.json").write_text('{"r": 8, ')
    with pytest.raises(ConfigError, match="adapter_config.json: unreadable LoRA config"):
        load_safety_model(tiny_runtime, other)


def test_stdin_quotes_bom_and_bad_bytes(trained_folder, capsys, monkeypatch):
    out, model = trained_folder
    stdin = io.TextIOWrapper(io.BytesIO('\ufeff{"text": "first"}\n"I will find you" he said\n'.encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["classify", "--classifier", str(out), *model]) == 2
    assert "stdin line 2: invalid JSON" in _one_error_line(capsys)
    for lines, expected in ((["--lines"], ['{"text": "first"}', '"I will find you" he said']), ([], ["first"])):
        body = '\ufeff{"text": "first"}\n' + ('"I will find you" he said\n' if lines else "")
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body.encode()), encoding="utf-8"))
        assert main(["classify", "--classifier", str(out), *model, *lines]) == 0
        assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == expected
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9\n"), encoding="utf-8"))
    assert main(["classify", "--classifier", str(out), *model]) == 2
    assert "stdin is not UTF-8" in _one_error_line(capsys)


def test_eval_outputs_are_checked_first_and_one_class_data_is_measured(trained_folder, tmp_path, capsys):
    out, model = trained_folder
    benign = tmp_path / "benign.csv"
    benign.write_text("text,label\n" + "".join(f'"{t}",0\n' for t, y in TOY_PAIRS if y == 0))
    assert main(["eval", "--classifier", str(out), "--data", str(benign), "--plot", str(tmp_path / "x.pngg"), *model]) == 2
    assert "must end in .png, .svg, .pdf" in _one_error_line(capsys)
    assert main(["eval", "--classifier", str(out), "--data", str(benign), "--card", str(tmp_path), *model]) == 2
    assert "is a folder" in _one_error_line(capsys)
    plot = tmp_path / "reports" / "fp.png"  # the folder is created
    assert main(["eval", "--classifier", str(out), "--data", str(benign), "--json", "--plot", str(plot), *model]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["positives"] == 0 and result["roc_auc"] is None and result["false_positive_rate"] is not None
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", "--classifier", str(out), "--data", str(benign), *model]) == 0
    assert "false-positive rate" in capsys.readouterr().out  # what a file of allowed texts measures


@pytest.fixture(scope="module")
def trained_folder(toy_folder, toy_safety_folder):
    return toy_folder, ["--model", "tiny-random", "--safety-model", str(toy_safety_folder)]


def _rewrite_head(folder, drop=None, bias_shape=None):
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "head.safetensors"))
    if drop:
        del state[drop]
    if bias_shape:
        state["bias"] = torch.zeros(bias_shape)
    save_file(state, str(folder / "head.safetensors"))


def _edit_card(folder, **changes):
    values = json.loads((folder / "classifier.json").read_text())
    values.update(changes)
    (folder / "classifier.json").write_text(json.dumps(values))
