"""Test-process caches of what botocore rebuilds for every new session and client.

Every test starts from fresh boto3 sessions and clients (``clients.clear_caches``), so that no test sees
another's credentials, regions or client hooks. botocore builds each of them from data that never
changes within a process: its builtin event handlers, the event-name aliases, the client class of a
service model. Measured on the developer loop (about 1,900 tests, 2-core machine), rebuilding them was
about a tenth of the parallel run's CPU. These caches share only that immutable data: each session and
client still gets its own emitter (handlers registered on one never reach another), its own credentials
and its own configuration.
"""

from __future__ import annotations

import copy
from typing import Any


def share_event_aliases() -> None:
    """The event-name alias of each event name (``EventAliaser._alias_event_name``) depends only on the
    name and botocore's fixed alias table, yet each emitter kept its own cache, so every new client
    computed it again for every event it emitted or registered (about 87,000 times in 300 tests)."""
    from botocore import hooks

    shared: dict[str, str] = {}
    original_init = hooks.EventAliaser.__init__

    def init(self: hooks.EventAliaser, event_emitter: Any, event_aliases: Any = None) -> None:
        original_init(self, event_emitter, event_aliases)
        if event_aliases is None or event_aliases == hooks.EVENT_ALIASES:
            self._alias_name_cache = shared  # type: ignore[attr-defined]

    hooks.EventAliaser.__init__ = init  # type: ignore[method-assign]


def copy_builtin_handlers() -> None:
    """A new botocore session registers botocore's ~130 builtin handlers one by one, each checked with
    ``inspect`` (7 ms a session). The registrations are the same for every session while the list is
    unchanged (moto adds its stubber to it on import), so a session gets a copy of an emitter that holds
    them, as botocore itself gives each client a copy of its session's emitter."""
    from botocore import handlers, hooks, session

    original = session.Session._register_builtin_handlers
    prototype: dict[str, Any] = {}

    def register_builtin_handlers(self: session.Session, events: Any) -> None:
        try:
            own = self._original_handler  # type: ignore[attr-defined]
            fresh = (
                events is self._events  # type: ignore[attr-defined]
                and type(own) is hooks.HierarchicalEmitter
                and not own._unique_id_handlers
                and not own._handlers._root["children"]
            )
        except (AttributeError, KeyError, TypeError):  # a botocore whose emitter is built otherwise
            fresh = False
        if not fresh:
            original(self, events)
            return
        current = tuple(handlers.BUILTIN_HANDLERS)
        if prototype.get("handlers") != current:
            built = hooks.HierarchicalEmitter()
            original(_Registrar(built), None)
            prototype.update(handlers=current, emitter=built)
        emitter = copy.copy(prototype["emitter"])
        emitter._lookup_cache = {}  # botocore's copy shares the lookup cache with the original
        self._original_handler = emitter  # type: ignore[attr-defined]
        self._events = hooks.EventAliaser(emitter)  # type: ignore[attr-defined]

    session.Session._register_builtin_handlers = register_builtin_handlers  # type: ignore[method-assign]


class _Registrar:
    """What ``Session._register_builtin_handlers`` uses of a session: ``register`` and ``_events``."""

    def __init__(self, emitter: Any) -> None:
        from botocore import hooks

        self._events = hooks.EventAliaser(emitter)

    def register(self, event_name: str, handler: Any) -> None:
        # As botocore.session.Session.register (no unique id for the builtin handlers).
        self._events.register(event_name, handler)


def share_client_methods() -> None:
    """A client class gets one method per operation of its service (``ClientCreator._create_methods``),
    each with its docstring object: 2 ms for each client created. The methods depend only on the service
    model (they call ``self._make_api_call(operation_name, ...)``); the loader is shared in the test
    process (tests/conftest.py), so a service's model description is one object, and its methods are
    made once. Each client class is still made afresh, with its session's ``creating-client-class``
    handlers."""
    from botocore import client

    original = client.ClientCreator._create_methods
    made: dict[int, tuple[Any, dict[str, Any]]] = {}

    def create_methods(self: client.ClientCreator, service_model: Any) -> dict[str, Any]:
        description = getattr(service_model, "_service_description", None)
        if description is None:  # a botocore whose models are built otherwise: no sharing
            return original(self, service_model)
        found = made.get(id(description))
        if found is None or found[0] is not description:
            found = made[id(description)] = (description, original(self, service_model))
        return dict(found[1])

    client.ClientCreator._create_methods = create_methods  # type: ignore[method-assign]


def install() -> None:
    share_event_aliases()
    copy_builtin_handlers()
    share_client_methods()
