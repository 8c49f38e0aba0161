"""rlsuite environments (installed as ``rlsuite.envs``).

``make("gymnax:CartPole-v1")``, ``make("brax:hopper")``, ``make("gymnasium:CartPole-v1")`` and
the ids our own modules register (``list_envs()`` shows them all).
"""

from rlsuite.envs.registry import describe, list_envs, make, register
from rlsuite.envs.wrappers import BraxToGymnax, ClipAction, FlattenObservation, to_gymnasium

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
