"""CloudFormation templates (template.yaml, member-account.yaml) read as cfn-lint reads them, without cfn-lint.

cfn-lint's loader (``cfnlint.decode.cfn_yaml``) turns the short-form intrinsic functions into their long
form (``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` ->
``{"Fn::Sub": s}``); importing it costs 0.6 s of CPU in every test process that reads a template, and its
pure-Python parse tens of milliseconds a read. This loader makes the same dictionaries with PyYAML's C
parser; tests/foundation/test_deploy_artifacts.py checks that both give equal templates (with cfn-lint,
among the slow tests). Each call returns a fresh copy, so that no test sees another's changes.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Tags kept as they are (cfn-lint's UNCONVERTED_SUFFIXES); every other ``!Tag`` becomes ``Fn::Tag``.
_UNPREFIXED = {"Ref", "Condition"}

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    pass


def _intrinsic(loader: Any, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _UNPREFIXED else f"Fn::{suffix}"
    if name == "Fn::GetAtt" and isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node).split(".", 1)}
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    if isinstance(node, yaml.MappingNode):
        return {name: loader.construct_mapping(node, deep=True)}
    raise ValueError(f"Bad tag: !{suffix}")


_Loader.add_multi_constructor("!", _intrinsic)


@functools.cache
def _parsed(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_Loader)  # type: ignore[no-any-return]


def load(name: str = "template.yaml") -> dict[str, Any]:
    """The template ``name`` (a path relative to the repository root), as cfn-lint's loader returns it."""
    return copy.deepcopy(_parsed(ROOT / name))
