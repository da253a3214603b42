import pytest

from shieldkit.cli import build_parser, main
from shieldkit.ui.cli import APP, streamlit_command


def _args(*argv):
    return build_parser().parse_args(["ui", *argv])


def test_streamlit_command_passes_the_model_settings_through():
    argv, env = streamlit_command(_args("--model", "tiny-random", "--port", "8765", "--headless"))
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4] == str(APP)
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.port"] == "8765" and flags["--server.headless"] == "true"
    assert flags["--server.address"] == "127.0.0.1" and flags["--browser.gatherUsageStats"] == "false"
    assert env["SHIELDKIT_MODEL"] == "tiny-random" and env["SHIELDKIT_DTYPE"] == "float32"


def test_bad_options_are_one_line_errors(capsys, tmp_path):
    assert main(["ui", "--port", "0"]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err
    assert main(["ui", "--classifier", str(tmp_path / "missing")]) == 2
    assert "--classifier folder not found" in capsys.readouterr().err
    assert main(["ui", "--model", "  "]) == 2
    assert "invalid setting model" in capsys.readouterr().err


def test_ui_is_listed_in_help():
    assert "ui" in build_parser().format_help()


@pytest.mark.parametrize("flag", ["--headless"])
def test_classifier_folders_are_offered(tmp_path, flag):
    _, env = streamlit_command(_args(flag, "--classifier", str(tmp_path)))
    assert env["SHIELDKIT_UI_CLASSIFIERS"] == str(tmp_path.resolve())
