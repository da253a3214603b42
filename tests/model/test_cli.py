"""The command line as a user runs it: the installed ``shieldkit`` script in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHIELDKIT = str(Path(sys.executable).parent / "shieldkit")  # the installed console script of this environment


def run(*args, env=None):
    full_env = {**os.environ, "SHIELDKIT_PROGRESS": "0", **(env or {})}
    return subprocess.run([SHIELDKIT, *args], capture_output=True, text=True, env=full_env, timeout=600)


def test_help_lists_the_subcommands():
    result = run("--help")
    assert result.returncode == 0
    assert "generate" in result.stdout and "model" in result.stdout


def test_generate_on_the_tiny_model():
    result = run("generate", "Hello", "--model", "tiny-random", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "finish: length" in result.stderr


def test_model_info_json():
    result = run("model", "info", "--model", "tiny-random", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["source_kind"] == "tiny" and info["parameters"] > 0 and info["load_seconds"] >= 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("generate", "  "), None, "PROMPT must not be empty"),
        (("generate", "hi", "--model", "/no/such/gemma"), None, "does not exist"),
        (("generate", "hi", "--model", "tiny-random", "--max-new-tokens", "0"), None, "max_new_tokens"),
        (("model", "info"), {"SHIELDKIT_DTYPE": "float64"}, "SHIELDKIT_DTYPE"),
    ],
)
def test_bad_input_is_one_clear_line_not_a_traceback(args, env, message):
    result = run(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.real_model
def test_generate_with_the_embedded_gemma(real_runtime):
    result = run("generate", "The capital of France is", "--max-new-tokens", "8", "--stream")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) > 3
    assert "gemma-3-270m" in result.stderr
