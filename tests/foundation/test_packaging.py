"""What `pip install opsbot` gives: the manifest ships with the code, and the demo says what it lacks."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from bot.cli import main


def test_demo_without_moto_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """A wheel install has no moto: the demo answers with the extra to install, exit 3, no traceback."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real(name, *a)
    )
    assert main(["demo", "--run", "/ops help"]) == 3
    err = capsys.readouterr().err
    assert "pip install '.[demo]'" in err and "Traceback" not in err


def test_the_manifest_is_package_data(capsys: Any) -> None:
    """`opsbot manifest` reads bot/manifest.json through the package, as a wheel installs it."""
    from importlib import resources

    shipped = json.loads(resources.files("bot").joinpath("manifest.json").read_text())
    assert main(["manifest"]) == 0
    assert json.loads(capsys.readouterr().out)["oauth_config"] == shipped["oauth_config"]


@pytest.mark.slow  # builds the wheel
def test_the_wheel_holds_the_manifest(tmp_path: Any) -> None:
    """Built as pip builds it, by the backend pyproject.toml's [build-system] names: the manifest is inside
    the wheel, beside the code that reads it. The dev extra installs that backend, so the build runs without
    isolation (an isolated build fetches setuptools from PyPI on every run: about 12 s of a loaded `make
    test`); the version check keeps it the backend a user's isolated build would get."""
    import subprocess
    import sys
    import tomllib
    import zipfile
    from importlib.metadata import version
    from pathlib import Path

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[2]
    build_system = tomllib.loads((root / "pyproject.toml").read_text())["build-system"]
    for requirement in map(Requirement, build_system["requires"]):
        assert requirement.specifier.contains(version(requirement.name)), (
            f"{requirement} is what [build-system] asks for, but this environment has "
            f"{requirement.name} {version(requirement.name)}: the dev extra must require it too"
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("opsbot-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/manifest.json" in names and "bot/cli/local.py" in names
    assert not any(name.startswith("tests/") for name in names)
