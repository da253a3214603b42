"""deploy/Dockerfile, linted by parsing it (there is no Docker daemon to build it here): each COPY source exists in
the build context and is not excluded by .dockerignore, every package folder of pyproject.toml is copied before
`pip install .`, torch comes from the CPU index, the embedded model is converted at build time, the image runs as
a non-root user, and its command is one the CLI accepts. Also: the wheel packs every data file the packages hold
(the committed safety model was once left out, so an installed shieldkit could load no classifier)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    parse = pytest.importorskip("dockerfile_parse", reason="dockerfile-parse is not installed (.[test])")
    structure = parse.DockerfileParser(path=str(DOCKERFILE)).structure
    return [(item["instruction"], item["value"]) for item in structure if item["instruction"] != "COMMENT"]


def ignored(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` (relative to the repository) out of the build context."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    parts = PurePosixPath(path).parts
    return any(fnmatch.fnmatch("/".join(parts[:i]), p.removeprefix("**/")) or fnmatch.fnmatch(parts[i - 1], p.removeprefix("**/"))
               for p in patterns for i in range(1, len(parts) + 1))


def test_every_copy_source_exists_in_the_build_context(instructions):
    copied = []
    for instruction, value in instructions:
        if instruction != "COPY":
            continue
        words = shlex.split(value)
        if any(word.startswith("--from=") for word in words):
            continue
        sources = [word for word in words if not word.startswith("--")][:-1]
        assert sources, value
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not ignored(source), f"COPY {source}: .dockerignore leaves it out of the build context"
        copied += sources
    needed = {"pyproject.toml", "README.md", *SETUPTOOLS["package-dir"].values()}  # README: pyproject's readme
    assert needed <= set(copied), f"not copied before `pip install .`: {sorted(needed - set(copied))}"
    for folder in SETUPTOOLS["package-dir"].values():
        for file in (ROOT / folder).rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                assert not ignored(str(file.relative_to(ROOT))), f".dockerignore drops {file.relative_to(ROOT)}"


def test_the_image_installs_cpu_torch_converts_the_model_and_runs_unprivileged(instructions):
    runs = [value for instruction, value in instructions if instruction == "RUN"]
    args = dict(value.split("=", 1) for instruction, value in instructions if instruction == "ARG")
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu") and any("--index-url" in run and "torch==" in run for run in runs)
    pinned = next(line for line in PYPROJECT["project"]["dependencies"] if line.startswith("torch=="))
    assert args["TORCH_VERSION"] == pinned.removeprefix("torch==")
    install = next(i for i, run in enumerate(runs) if run.strip() == "pip install .")
    converts = [i for i, run in enumerate(runs) if run.startswith("shieldkit classify")]
    assert converts and converts[0] > install  # the runtime runs once at build time, after the install
    bases = [value for instruction, value in instructions if instruction == "FROM"]
    assert len(bases) == 2 and all(":" in base.split()[0] and "latest" not in base for base in bases)
    env = " ".join(value for instruction, value in instructions if instruction == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "SHIELDKIT_CACHE_DIR=" in env
    [user] = [value for instruction, value in instructions if instruction == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert {"8000", "8001"} <= set(next(v for i, v in instructions if i == "EXPOSE").split())


def test_the_image_command_is_one_the_cli_accepts(instructions):
    from shieldkit.cli import build_parser

    entrypoint = json.loads(next(v for i, v in instructions if i == "ENTRYPOINT"))
    command = json.loads(next(v for i, v in instructions if i == "CMD"))
    assert entrypoint == ["shieldkit"]
    assert build_parser().parse_args(command).port == 8000


def _matches(relative: str, pattern: str) -> bool:
    """setuptools' package-data glob: ``*`` does not cross a folder."""
    path, glob = PurePosixPath(relative).parts, PurePosixPath(pattern).parts
    return len(path) == len(glob) and all(fnmatch.fnmatchcase(p, g) for p, g in zip(path, glob))


def test_the_wheel_packs_every_data_file_of_the_packages():
    folders = SETUPTOOLS["package-dir"]
    data = SETUPTOOLS["package-data"]

    def folder_of(package: str) -> Path:
        parent = max((name for name in folders if package == name or package.startswith(name + ".")), key=len)
        return ROOT / folders[parent] / Path(*package[len(parent):].lstrip(".").split(".") if package != parent else ())

    packages = {package: folder_of(package) for package in SETUPTOOLS["packages"]}
    for package, folder in packages.items():
        inner = [other for name, other in packages.items() if name != package and name.startswith(package + ".")]
        patterns = data.get("*", []) + data.get(package, [])
        for file in folder.rglob("*"):
            if not file.is_file() or "__pycache__" in file.parts or any(file.is_relative_to(o) for o in inner):
                continue
            relative = file.relative_to(folder).as_posix()
            if file.suffix == ".py" and file.parent == folder:
                continue
            assert any(_matches(relative, p) for p in patterns), f"{folder.name}/{relative} would be left out of the wheel"
