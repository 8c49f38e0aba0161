"""rlsuite environments (installed as ``rlsuite.envs``).

``make("gymnax:CartPole-v1")``, ``make("brax:hopper")``, ``make("gymnasium:CartPole-v1")`` and
the ids our own modules register (``list_envs()`` shows them all).
"""

from rlsuite.envs.registry import describe, list_envs, make, register

_WRAPPERS = ("BraxToGymnax", "ClipAction", "FlattenObservation", "to_gymnasium")


def __getattr__(name: str):
    # The wrappers subclass gymnax's Environment, and gymnax takes ~1.3 s to import (it pulls in
    # matplotlib, seaborn and scipy): loaded on first use so `rlsuite ... --help` stays fast.
    if name in _WRAPPERS:
        from rlsuite.envs import wrappers

        return getattr(wrappers, name)
    raise AttributeError(f"module 'rlsuite.envs' has no attribute {name!r}")


__all__ = [
    "make",
    "register",
    "list_envs",
    "describe",
    "BraxToGymnax",
    "ClipAction",
    "FlattenObservation",
    "to_gymnasium",
]
