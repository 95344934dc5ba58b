"""Test-process memos of what moto works out again for every request it answers.

A request to moto looks up its action by routing the request up to four times (``_get_action``) and
lists the response class's methods with ``inspect.getmembers`` (``method_names_from_class``): about
0.6 ms a request, a twentieth of the developer loop's CPU. Both answers are fixed for one request and one
class, so they are kept; what moto does with the request is unchanged. Each memo is applied only where
moto still has the function it replaces, so that a moto release that reworks them runs as it is.
"""

from __future__ import annotations

from typing import Any


def remember_action() -> None:
    from moto.core import responses

    base = responses.BaseResponse
    if "_get_action" not in vars(base) or not hasattr(base, "_get_action_from_request"):
        return

    def get_action(self: Any) -> str:
        request = self.normalized_request
        memo = self.__dict__.get("_opsbot_action")
        if memo is not None and memo[0] is request:
            return memo[1]  # type: ignore[no-any-return]
        action: str = self._get_action_from_request(request)
        self._opsbot_action = (request, action)
        return action

    base._get_action = get_action  # type: ignore[method-assign]


def remember_method_names() -> None:
    from moto.core import responses

    original = getattr(responses, "method_names_from_class", None)
    if original is None:
        return
    known: dict[type, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        # A class whose methods are added or removed (tests patch moto's classes) is listed again.
        shape = tuple(len(vars(k)) for k in clazz.__mro__)
        found = known.get(clazz)
        if found is None or found[0] != shape:
            found = known[clazz] = (shape, original(clazz))
        return found[1]

    responses.method_names_from_class = method_names_from_class


def install() -> None:
    remember_action()
    remember_method_names()
