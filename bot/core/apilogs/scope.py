"""What one ``/apilogs`` run may read: the channel's read scope from the policy, and opsbot's own logs.

Checked where the groups are decided, before any of them is read: the API and stage once resolved
(refused with a sentence naming what is allowed), and every log group before it is searched or tailed
(a group outside the scope is skipped and named in the answer). The CLI runs with the operator's own
AWS credentials and passes no limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.apilogs.model import ApiStage
from bot.errors import NotAllowedError
from bot.security.policy import ReadScope

# The template names opsbot's functions ``<stack>-slack``, ``<stack>-ses-feedback`` and so on: the Slack
# function's own name gives the stack, and with it every function of the stack.
SLACK_FUNCTION_SUFFIX = "-slack"


def opsbot_log_prefixes(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Where opsbot's own function logs are: ``/aws/lambda/<stack>-`` and this function's own group.

    Empty outside Lambda (``opsbot serve``, tests): there are no opsbot functions to protect there."""
    env = os.environ if environ is None else environ
    name = env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
    prefixes: list[str] = []
    if name:
        stack = name.removesuffix(SLACK_FUNCTION_SUFFIX) if name.endswith(SLACK_FUNCTION_SUFFIX) else ""
        prefixes.append(f"/aws/lambda/{stack}-" if stack else f"/aws/lambda/{name}")
    own_group = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "").strip()
    if own_group:
        prefixes.append(own_group)
    return tuple(dict.fromkeys(prefixes))


@dataclass(frozen=True)
class ReadLimit:
    scope: ReadScope
    opsbot_prefixes: tuple[str, ...] = ()

    @classmethod
    def for_lambda(cls, scope: ReadScope) -> ReadLimit:
        return cls(scope, opsbot_log_prefixes())

    def default_api(self) -> str:
        return self.scope.only_api()

    def default_stage(self) -> str:
        return self.scope.only_stage()

    def allows_api(self, api_id: str, name: str) -> bool:
        return self.scope.allows_api(api_id, name)

    def allows_stage(self, stage: str) -> bool:
        return self.scope.allows_stage(stage)

    def check_api(self, api_id: str, name: str) -> None:
        if not self.scope.allows_api(api_id, name):
            shown = f"`{name}` ({api_id})" if name and name != api_id else f"`{api_id}`"
            raise NotAllowedError(self.scope.refusal(f"API {shown}"))

    def check_stage(self, stage: ApiStage) -> None:
        self.check_api(stage.api_id, stage.name)
        if not self.scope.allows_stage(stage.stage):
            raise NotAllowedError(self.scope.refusal(f"stage `{stage.stage}` of {stage.label}"))

    def allows_group(self, group: str) -> bool:
        return self.scope.allows_group(group, opsbot_prefixes=self.opsbot_prefixes)

    def split(self, groups: Iterable[str]) -> tuple[list[str], list[str]]:
        """(groups that may be read, groups outside the scope), in order."""
        allowed: list[str] = []
        skipped: list[str] = []
        for group in groups:
            (allowed if self.allows_group(group) else skipped).append(group)
        return allowed, skipped

    def skipped_note(self, skipped: Iterable[str]) -> str:
        names = list(dict.fromkeys(g for g in skipped if g))
        if not names:
            return ""
        own = [g for g in names if any(g.startswith(p) for p in self.opsbot_prefixes if p)]
        why = (
            "opsbot's own logs are read only where the policy's read scope says opsbot_logs"
            if own and len(own) == len(names) and not self.scope.opsbot_logs
            else f"this channel may read {self.scope.allowed_words()}"
        )
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return f"Not read, outside what this channel may read ({why}): {listed}."


__all__ = ["ReadLimit", "opsbot_log_prefixes"]
