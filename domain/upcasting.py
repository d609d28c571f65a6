"""Upcasters: explicit functions that lift an old payload one schema version up.

The registry is keyed by (type, from_version). Reading an event runs the chain
from its `schema_version` up to the current version of its type, so stored and
submitted v1 events stay readable after a type gains a v2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonDict = dict[str, Any]
Upcaster = Callable[[JsonDict], JsonDict]

CURRENT_VERSION: dict[str, int] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownSchemaVersion(ValueError):
    """An event claims a schema version newer than this server knows."""


def current_version(event_type: str) -> int:
    """Return the schema version payloads of this type are validated at."""
    return CURRENT_VERSION.get(event_type, 1)


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function lifting `event_type` payloads from `from_version` to the next."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        CURRENT_VERSION[event_type] = max(current_version(event_type), from_version + 1)
        return fn

    return register


def upcast(event_type: str, version: int, payload: JsonDict) -> JsonDict:
    """Lift `payload` from `version` to the current version of `event_type`."""
    target = current_version(event_type)
    if version > target:
        raise UnknownSchemaVersion(
            f"schema_version {version} 高于服务器支持的版本 {target} (newer than this server knows)")
    while version < target:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise UnknownSchemaVersion(f"no upcaster for {event_type} v{version}")
        payload = step(dict(payload))
        version += 1
    return payload
