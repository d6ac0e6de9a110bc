"""The registry of drop policies: a dict and a decorator, as timm registers its models.

``@register_policy`` on a class with a ``name`` makes ``get_policy(name)`` return one of it;
``policy_names()`` lists them for the command line, the dashboard's form and ``bench --frontier``.
Learn&Drop's policies (``method.learn_drop``) and its peers (``method.peers``) register when
``learndrop.method`` is imported.
"""

from __future__ import annotations

from typing import Protocol

from ..config import PolicyConfig
from ..errors import LearnDropError
from .policy import Decision, Drop, Observations, PolicyState

_POLICIES: dict[str, Policy] = {}


class Policy(Protocol):
    """A drop criterion. ``step``, ``start`` and ``lr_scales`` are pure: the same state, observations and
    config give the same answer."""

    name: str
    # beyond d: "grad_norm" (measured for it), "progress" (it acts on the share done)
    observes: frozenset[str]

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]: ...

    def needs(self, config: PolicyConfig) -> frozenset[str]:
        """What it observes beyond d under ``config`` (``observes``, and what a setting adds)."""

    def start(self, state: PolicyState, config: PolicyConfig) -> tuple[PolicyState, tuple[Drop, ...]]:
        """Drops before any training (freeze-first-k); none for the others."""

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        """Per unit, its learning-rate multiplier at ``progress`` (the head's is 1); None: all 1."""


class BasePolicy:
    """What a policy does unless it says otherwise: observes d only, no drop at the start, lr as given."""

    name = ""
    observes: frozenset[str] = frozenset()

    def needs(self, config: PolicyConfig) -> frozenset[str]:
        return self.observes

    def start(self, state: PolicyState, config: PolicyConfig) -> tuple[PolicyState, tuple[Drop, ...]]:
        return state, ()

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        return None


def register_policy(cls: type) -> type:
    """Register a policy class under its ``name`` (one instance: policies are pure)."""
    if not cls.name or cls.name in _POLICIES:
        raise ValueError(f"a policy needs a name of its own, got {cls.name!r}")
    _POLICIES[cls.name] = cls()
    return cls


def policy_names() -> tuple[str, ...]:
    """The registered policies, in the order they registered (learndrop and none first)."""
    return tuple(_POLICIES)


def get_policy(name: str) -> Policy:
    try:
        return _POLICIES[name]
    except KeyError:
        raise LearnDropError(f"unknown policy {name!r}; choose one of: {', '.join(_POLICIES)}",
                             field="policy") from None
