"""Core returns data and the caller renders: no module under bot/core imports presentation (bot.render),
the Slack side (bot.listeners, slack_bolt, slack_sdk) or the CLI (bot.cli), not even inside a function,
where an import runs late and is easy to miss. A cycle began that way (issue 10: the DNS worker rendered
its answers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bot.core

CORE = Path(bot.core.__file__).parent
FORBIDDEN = ("bot.render", "bot.listeners", "bot.cli", "slack_bolt", "slack_sdk")


def _package(path: Path) -> str:
    """The package a module's relative imports start from (for ``__init__.py`` too: its directory)."""
    return ".".join(path.relative_to(CORE.parent.parent).parent.parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` anywhere in the file names (relative ones
    resolved), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package(path).split(".")
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.append((node.lineno, base))
            # ``from bot import render`` names the module in the alias.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


MODULES = sorted(CORE.rglob("*.py"))


def test_every_core_package_is_walked() -> None:
    packages = {path.parent.name for path in MODULES}
    assert {"apilogs", "common", "device", "dns", "fanout", "mail"} <= packages, packages


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_never_imports_presentation(path: Path) -> None:
    wrong = [f"line {line}: {module}" for line, module in imported(path) if _forbidden(module)]
    assert wrong == [], f"{path.relative_to(CORE.parent.parent)} imports {wrong}"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = CORE / "dns" / "worker.py"
    source = tmp_path / "sample.py"
    source.write_text(
        "def late():\n    from bot.render.dns import plan_blocks\n    import slack_sdk.web\n"
        "    from bot import cli\n",
        encoding="utf-8",
    )
    found = [module for _, module in imported(source) if _forbidden(module)]
    assert found == ["bot.render.dns", "bot.render.dns.plan_blocks", "slack_sdk.web", "bot.cli"]
    assert sample in MODULES
