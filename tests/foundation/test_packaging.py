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


def test_the_wheel_holds_the_manifest(tmp_path: Any) -> None:
    """Built as pip builds it (its isolated build fetches setuptools from PyPI): the manifest is inside the
    wheel, beside the code that reads it."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
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
