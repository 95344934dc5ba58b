"""The documentation cannot drift from the code: docs/configuration.md names exactly the variables opsbot
reads and the parameters template.yaml declares, every relative link of README.md and docs/ resolves (file
and heading), and the README stays a short front door whose first screen holds the two set-up commands.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from tests.support import cfn_template

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Read by boto3 itself, not by opsbot's code; documented because they change what opsbot talks to.
READ_BY_BOTO3 = frozenset({"AWS_PROFILE", "AWS_ENDPOINT_URL"})


# -- what the code reads ------------------------------------------------------------------------------


def _call_string_arguments(tree: ast.AST) -> set[str]:
    """String constants passed directly to a call: ``env.get("X")``, ``_int(env, "X", 90)``,
    ``settings.extra.get("X")``, ``whole("X", 3, 1)``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for argument in node.args:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.add(argument.value)
    return found


def _environ_reads(tree: ast.AST) -> set[str]:
    """``os.environ.get("X")``, ``os.environ["X"]`` (read), ``"X" in os.environ``."""

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and is_environ(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and is_environ(node.value)
            and isinstance(node.slice, ast.Constant)
        ):
            found.add(str(node.slice.value))
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(is_environ(c) for c in node.comparators)
        ):
            found.add(str(node.left.value))
    return {name for name in found if ENV_NAME.match(name)}


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _mentions(path: Path, *words: str) -> bool:
    text = path.read_text(encoding="utf-8")
    return any(word in text for word in words)


@cache
def config_py_reads() -> frozenset[str]:
    """The variables bot/config.py reads (from the environment mapping or from ``Settings.extra``)."""
    return frozenset(
        n for n in _call_string_arguments(_parse(ROOT / "bot" / "config.py")) if ENV_NAME.match(n)
    )


@cache
def code_reads() -> frozenset[str]:
    """Everything opsbot's code reads: config.py, the ``OPSBOT_*`` variables other modules take from
    ``Settings.extra`` (config.py collects every ``OPSBOT_*`` variable there), and direct environ reads."""
    names = set(config_py_reads())
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "handlers").rglob("*.py")):
        # A module whose text names neither can read nothing (parsing every module took seconds).
        if not _mentions(path, "OPSBOT_", "environ"):
            continue
        tree = _parse(path)
        names |= {n for n in _call_string_arguments(tree) if n.startswith("OPSBOT_") and ENV_NAME.match(n)}
        names |= _environ_reads(tree)
    return frozenset(names)


@cache
def read_by_tests() -> frozenset[str]:
    names: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if _mentions(path, "environ"):  # an environ read names ``environ``
            names |= _environ_reads(_parse(path))
    return frozenset(names)


@cache
def template_parameters() -> frozenset[str]:
    return frozenset(cfn_template.load("template.yaml")["Parameters"])


# -- what the page says --------------------------------------------------------------------------------

_FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def _section(text: str, heading: str) -> str:
    """From ``## heading`` to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{CONFIGURATION.name} has no section '## {heading}'"
    return match.group(1)


def _first_cells(section: str) -> list[str]:
    return [m.group(1) for line in section.splitlines() if (m := _FIRST_CELL.match(line))]


def documented_variables(text: str) -> set[str]:
    return {cell for cell in _first_cells(_section(text, "Environment variables")) if ENV_NAME.match(cell)}


def documented_parameters(text: str) -> set[str]:
    return set(_first_cells(_section(text, "SAM parameters")))


def test_the_scan_finds_what_config_py_reads() -> None:
    """Guards the parser above: if config.py changed how it reads the environment, the checks below would
    pass vacuously."""
    reads = config_py_reads()
    assert {
        "SLACK_SIGNING_SECRET",
        "OPSBOT_STATE_TABLE",
        "OPSBOT_AUDIT_TTL_DAYS",
        "OPSBOT_LOG_LEVEL",
    } <= reads
    assert {"OPSBOT_MAIL_TRANSIENT_LIMIT", "OPSBOT_LOG_PAYLOADS", "NO_COLOR"} <= code_reads()
    assert "OPSBOT_REQUIRE_NSD" in read_by_tests()


def test_configuration_lists_every_variable_opsbot_reads() -> None:
    documented = documented_variables(CONFIGURATION.read_text(encoding="utf-8"))
    missing = sorted(code_reads() - documented)
    assert not missing, f"docs/configuration.md does not list {missing} (read by bot/)"


def test_configuration_names_no_variable_nothing_reads() -> None:
    documented = documented_variables(CONFIGURATION.read_text(encoding="utf-8"))
    unknown = sorted(documented - code_reads() - read_by_tests() - READ_BY_BOTO3)
    assert not unknown, f"docs/configuration.md lists {unknown}, which nothing reads"


def test_configuration_lists_exactly_the_template_parameters() -> None:
    documented = documented_parameters(CONFIGURATION.read_text(encoding="utf-8"))
    assert sorted(template_parameters() - documented) == [], "parameters of template.yaml not in the page"
    assert sorted(documented - template_parameters()) == [], "parameters in the page not in template.yaml"


def test_readme_names_only_real_parameters() -> None:
    deploy = re.search(
        r"^## Deploy in 10 minutes$(.*?)(?=^## |\Z)", README.read_text(encoding="utf-8"), re.M | re.S
    )
    assert deploy, "README.md has no '## Deploy in 10 minutes'"
    named = set(re.findall(r"`([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)`", deploy.group(1)))
    assert named, "the deploy section names no parameter"
    assert sorted(named - template_parameters()) == []


# -- links ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markdown removed, lowercase, only letters, digits, ``-``, ``_`` and
    spaces kept, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    result: set[str] = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]


def test_the_pages_the_issue_asks_for_exist() -> None:
    wanted = {"apilogs", "mail", "device", "dns", "fanout", "ops", "configuration", "authorization", "deploy",
              "architecture", "operations"}  # fmt: skip
    assert wanted <= {p.stem for p in DOCS.glob("*.md")}


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_slug_follows_github() -> None:
    assert slug("Where `/dns` work runs") == "where-dns-work-runs"
    assert slug("`/apilogs` — one API request") == "apilogs--one-api-request"
    assert slug("Deploy in 10 minutes") == "deploy-in-10-minutes"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nowhere) [gone](missing.md) `[code](x.md)`\n")
    assert relative_links(page) == ["#title", "#nowhere", "missing.md"]
    assert anchors(page) == {"title"}


# -- the README's shape --------------------------------------------------------------------------------

SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; details belong in docs/"


def shell_blocks_opened_within(text: str, first_lines: int) -> list[list[str]]:
    """The commands (comments dropped) of each shell code block that opens within ``first_lines``."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            if not in_fence:
                language = line.strip()[3:].strip()
                current = [] if number <= first_lines and language in SHELL_LANGUAGES else None
            elif current is not None:
                blocks.append([c for raw in current if (c := raw.split("#", 1)[0].strip())])
                current = None
            in_fence = not in_fence
        elif in_fence and current is not None:
            current.append(line)
    return blocks


def test_readme_first_screen_holds_exactly_the_two_commands() -> None:
    blocks = shell_blocks_opened_within(README.read_text(encoding="utf-8"), 40)
    assert blocks == [["make demo", "make test"]], blocks


def test_the_first_screen_check_counts_every_shell_block() -> None:
    text = "# x\n```sh\nmake demo   # a\nmake test\n```\n```text\n/ops help\n```\n```sh\npip install x\n```\n"
    assert shell_blocks_opened_within(text, 40) == [["make demo", "make test"], ["pip install x"]]
    assert shell_blocks_opened_within(text, 3) == [["make demo", "make test"]]
