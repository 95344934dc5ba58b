"""The build reads the template's architecture however the YAML spells it, and refuses when it cannot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def platform_of(tmp_path: Path, line: str) -> str:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    text = (ROOT / "template.yaml").read_text().replace("Architectures: [arm64]", line, 1)
    (tmp_path / "template.yaml").write_text(text)
    shown = subprocess.run(
        ["make", "-s", "--eval", "show: ; @echo $(LAMBDA_PLATFORM)", "show"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip()


@pytest.mark.parametrize(
    "line", ["Architectures: [arm64]", 'Architectures: ["arm64"]', "Architectures:\n      - arm64"]
)
def test_every_spelling_of_arm64_builds_for_aarch64(tmp_path: Path, line: str) -> None:
    assert platform_of(tmp_path, line) == "manylinux2014_aarch64"


def test_x86_64_builds_for_x86_64(tmp_path: Path) -> None:
    assert platform_of(tmp_path, "Architectures: [x86_64]") == "manylinux2014_x86_64"


def test_a_template_without_an_architecture_is_refused(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    text = (ROOT / "template.yaml").read_text().replace("Architectures: [arm64]\n", "", 1)
    (tmp_path / "template.yaml").write_text(text)
    done = subprocess.run(
        ["make", "-s", "lambda-python", f"ARTIFACTS_DIR={tmp_path / 'out'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "names no arm64 or x86_64 Architectures" in done.stderr
