"""`sam build`'s Makefile targets build for the template's runtime: the dependencies once, in
DependenciesLayer, exactly as requirements.lock pins them, as wheels for the runtime's platform; the
functions carry opsbot's code only; all of it compiled by the runtime's Python version, whose bytecode is
the only kind the runtime uses. requirements.lock pins every dependency of pyproject.toml, with hashes.

The builds use the template's Python version (python3.12 today), found as the Makefile finds it: where
this machine has none, the tests that build say so and skip; the refusal is tested everywhere. Building
the layer downloads the locked wheels from PyPI (pip's cache makes later runs quick)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import cfn_template

pytestmark = pytest.mark.slow  # builds the Lambda artifacts with pip and the runtime's Python

ROOT = Path(__file__).resolve().parents[2]
LAYER = "DependenciesLayer"


def template() -> dict[str, Any]:
    return cfn_template.load("template.yaml")


def runtime_version() -> str:
    runtime = template()["Globals"]["Function"]["Runtime"]
    match = re.fullmatch(r"python(\d+\.\d+)", runtime)
    assert match, f"the functions' runtime {runtime!r} is not pythonX.Y"
    return match.group(1)


def runtime_python(version: str) -> str | None:
    """The interpreter the Makefile would pick: python<version> on PATH, else pyenv's, if it really runs."""
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        out = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    return None


def make(target: str, artifacts: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        ["make", "-s", target, f"ARTIFACTS_DIR={artifacts}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def locked() -> dict[str, str]:
    """requirements.lock as {canonical name: version}."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


@dataclass
class Built:
    python: str
    version: str
    function: Path
    layer: Path  # the layer's python/ folder, /opt/python on Lambda


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    version = runtime_version()
    python = runtime_python(version)
    if python is None:
        pytest.skip(
            f"the template's runtime is python{version} and this machine has no python{version}: the build "
            "compiles with the runtime's version only (install it, e.g. `pyenv install {version}`)"
        )
    root = tmp_path_factory.mktemp("sam-build")
    function, layer = root / "SlackFunction", root / LAYER
    function.mkdir()
    layer.mkdir()
    for target, artifacts in ((f"build-{LAYER}", layer), ("build-SlackFunction", function)):
        # No LAMBDA_PYTHON: the Makefile must find the template's version by itself.
        result = make(target, artifacts)
        assert result.returncode == 0, result.stdout + result.stderr
    yield Built(python, version, function, layer / "python")


def bytecode_tags(folder: Path) -> set[str]:
    return {p.name.split(".")[-2] for p in folder.rglob("*.pyc")}


def test_the_layer_and_the_functions_share_the_runtime_and_architecture() -> None:
    tpl = template()
    globals_ = tpl["Globals"]["Function"]
    assert globals_["Layers"][0] == {"Ref": LAYER}  # then the tracing collector's, when deployed
    layer = tpl["Resources"][LAYER]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleRuntimes"] == [globals_["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == globals_["Architectures"]
    assert [layer["Metadata"]["BuildArchitecture"]] == globals_["Architectures"]
    functions = {n: r for n, r in tpl["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 5
    for name, function in functions.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name
        # A function of its own runtime, architecture or layers would not match the layer's bytecode.
        assert not {"Runtime", "Architectures", "Layers"} & set(function["Properties"]), name


def test_samconfig_builds_in_source() -> None:
    """Without it SAM copies the checkout, .venv included, to a scratch folder once per resource."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["build"]["parameters"]["build_in_source"] is True


def test_the_build_refuses_a_python_of_another_version(tmp_path: Path) -> None:
    version = runtime_version()
    other = sys.executable
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        pytest.skip(f"this interpreter is python{version}, the runtime's own: no other version to refuse")
    result = make("build-SlackFunction", tmp_path, f"LAMBDA_PYTHON={other}")
    assert result.returncode != 0
    assert (
        f"The functions run python{version} (template.yaml), but '{other}' is not a working Python {version}"
        in (result.stderr)
    )
    assert "ignored by the runtime" in result.stderr
    assert not (tmp_path / "bot").exists()


def test_the_build_follows_the_templates_runtime(tmp_path: Path) -> None:
    """A template moved to another Python version is built with that version or not at all."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    text = (ROOT / "template.yaml").read_text()
    assert f"Runtime: python{runtime_version()}" in text
    (project / "template.yaml").write_text(
        text.replace(f"Runtime: python{runtime_version()}", "Runtime: python3.99")
    )
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    result = make(f"build-{LAYER}", artifacts, cwd=project)
    assert result.returncode != 0
    assert "The functions run python3.99 (template.yaml), but 'python3.99' is not a working Python 3.99" in (
        result.stderr
    )


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    """Offline half of the lock check (CI's `make lock-check` regenerates it from PyPI and diffs): every
    dependency of pyproject.toml is pinned to a version it allows, the lock's direct dependencies are
    exactly pyproject's, and every pin carries hashes (pip --require-hashes refuses a lock without)."""
    declared = [
        Requirement(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    pins = locked()
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement} is in pyproject.toml but not in requirements.lock: run `make lock`"
        )
        assert requirement.specifier.contains(pins[name]), (
            f"{name}=={pins[name]} does not satisfy {requirement}"
        )
    text = (ROOT / "requirements.lock").read_text()
    direct = {
        canonicalize_name(m.group(1))
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==.*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
        if "opsbot (pyproject.toml)" in m.group(0)
    }
    assert direct == {canonicalize_name(r.name) for r in declared}
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2].strip())
    assert len(entries) == len(pins)
    for entry in entries:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]
    assert "#    make lock" in text.splitlines()[1]


def test_the_layer_holds_exactly_the_locked_versions_compiled_for_the_runtime(built: Built) -> None:
    installed = {}
    for info in built.layer.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        installed[canonicalize_name(name)] = version
    assert installed == locked()
    assert not (built.layer / "bin").exists()
    assert bytecode_tags(built.layer) == {f"cpython-{built.version.replace('.', '')}"}
    # Every module has its bytecode (pip's own compile was off; compileall did it with the runtime's Python).
    missing = [
        p for p in built.layer.rglob("*.py") if not list(p.parent.glob(f"__pycache__/{p.stem}.cpython-*.pyc"))
    ]
    assert missing == []


def test_the_function_ships_opsbot_only_compiled_for_the_runtime(built: Built) -> None:
    assert {p.name for p in built.function.iterdir()} == {"bot", "handlers"}
    assert (built.function / "bot" / "manifest.json").is_file()
    assert bytecode_tags(built.function) == {f"cpython-{built.version.replace('.', '')}"}
    sources = list(built.function.rglob("*.py"))
    assert sources and all(
        (p.parent / "__pycache__" / f"{p.stem}.cpython-{built.version.replace('.', '')}.pyc").is_file()
        for p in sources
    )
    # The runtime's magic number, and flags 0b01 (hash-based, never checked against the source).
    magic = subprocess.run(
        [
            built.python,
            "-c",
            "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = (
        built.function / "handlers" / "__pycache__" / f"slack.cpython-{built.version.replace('.', '')}.pyc"
    ).read_bytes()[:8]
    assert header[:4].hex() == magic and int.from_bytes(header[4:8], "little") == 1


def test_the_runtime_imports_the_shipped_bytecode(built: Built, tmp_path: Path) -> None:
    """As on Lambda's read-only file system: the function, then the layer, on the path of the runtime's
    Python; with the sources broken, the import can only succeed from the shipped bytecode."""
    function, layer = tmp_path / "task", tmp_path / "opt" / "python"
    shutil.copytree(built.function, function)
    shutil.copytree(built.layer, layer)
    (function / "handlers" / "slack.py").write_text("raise SystemExit('compiled from source')\n")
    (layer / "slack_bolt" / "__init__.py").write_text("raise SystemExit('compiled from source')\n")
    code = (
        f"import sys; sys.path[:0] = [{str(function)!r}, {str(layer)!r}]; sys.dont_write_bytecode = True\n"
        "import handlers.slack, bot, slack_bolt, boto3\n"
        "print(handlers.slack.handler.__name__, bot.__file__, slack_bolt.__file__, boto3.__file__)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "AWS_REGION": "us-east-1",
    }
    result = subprocess.run(
        [built.python, "-S", "-I", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    name, package, bolt, boto3 = result.stdout.split()
    assert name == "handler" and package.startswith(str(function))
    assert bolt.startswith(str(layer)) and boto3.startswith(str(layer))
