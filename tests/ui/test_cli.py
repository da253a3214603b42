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
    assert flags["--server.address"] == "127.0.0.1"
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


def test_no_terminal_means_headless():
    argv, _ = streamlit_command(_args(), terminal=False)
    assert dict(zip(argv[5::2], argv[6::2]))["--server.headless"] == "true"
    argv, _ = streamlit_command(_args(), terminal=True)
    assert dict(zip(argv[5::2], argv[6::2]))["--server.headless"] == "false"


def test_the_shipped_streamlit_settings_sit_next_to_the_app():
    import tomllib

    settings = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text())
    assert settings["server"]["showEmailPrompt"] is False
    assert settings["browser"]["gatherUsageStats"] is False
    assert settings["client"]["toolbarMode"] == "viewer"  # no "Deploy" button


def test_first_run_from_a_fresh_home_starts_without_a_prompt(tmp_path, start_ui):
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "ui.log"
    # no --headless and no terminal on stdin, as a user's first `shieldkit ui` from a script or a service
    with start_ui(log, "--model", "tiny-random", env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
                   timeout=60) as (_, process):
        assert process.poll() is None
    output = log.read_text()
    assert "Email" not in output and "Welcome to Streamlit" not in output, output
    assert "usage statistics" not in output, output  # the telemetry notice only shows when the setting is unset
    assert not (home / ".streamlit" / "credentials.toml").exists()
