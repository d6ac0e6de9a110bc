"""Drop policies: a name, its config and a pure ``step``, so a recorded run can be replayed through them.

A policy sees, at each check, what the controller observed of every unit still training (for
Learn&Drop, its change ``d`` since the last check) and returns its new state and a ``Decision``: every
unit's scores and state, the units the frontier advances over (dropped) and those frozen behind it. The
mechanics of dropping (freeze, optimizer surgery, cache) are the controller's, the same for every policy,
so a comparison between policies isolates the criterion. ``POLICIES`` holds the registered ones; a new
criterion is one more class with ``name`` and ``step`` (the peers, ``method/peers``, hold the registry).

What a policy sees is explicit (``Observations``): every unit's change ``d`` (always measured, so the
record keeps it), the share of the run's optimizer steps done (``progress``) and, when the policy lists
``"grad_norm"`` in ``observes``, each unit's gradient norm averaged over the interval. A policy may also
scale each unit's learning rate (``lr_scales``, a pure function of its state and the progress) and drop
units before any training (``start``).

Learn&Drop's rule (``step``): unit l is a candidate when the check is past ``warmup``, its change score
``s = d / peak(d) <= tau`` and its continuation score ``c = d(t) / d(t - window) <= kappa``, for
``patience`` checks in a row; only candidates at the frontier drop, and the last unit before the head
always trains. ``replay`` folds ``step`` over a recorded history (the threshold explorer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from ..config import PolicyConfig
from .scores import change_score, continuation_score

TRAINING, CANDIDATE, FROZEN, DROPPED = "training", "candidate", "frozen", "dropped"


@dataclass(frozen=True)
class UnitScore:
    unit: str
    d: float | None  # relative change since the last check; None once the unit no longer moves
    s: float | None  # change score d / peak
    c: float | None  # continuation score d(t) / d(t - window)
    state: str  # training | candidate | frozen | dropped


@dataclass(frozen=True)
class Drop:
    unit: str
    index: int
    s: float | None
    c: float | None
    reason: str  # a readable sentence


@dataclass(frozen=True)
class PolicyState:
    units: tuple[str, ...]
    check: int = 0  # checks seen so far
    history: tuple[tuple[float, ...], ...] = ()  # per unit, its d at each check while it trained
    streak: tuple[int, ...] = ()  # per unit, consecutive checks that met the rule
    dropped: int = 0  # length of the dropped prefix
    frozen: tuple[int, ...] = ()  # indices frozen behind the frontier (freeze_candidates)
    reference: tuple[float, ...] = ()  # per unit, a peak carried over from an earlier run (fine-tuning)
    last_g: tuple[float, ...] = ()  # per unit, its gradient norm at the last check (AutoFreeze)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyState:
        """The inverse of ``to_dict`` (a checkpoint stores lists where the state has tuples)."""
        return cls(tuple(data["units"]), data["check"], tuple(tuple(h) for h in data["history"]),
                   tuple(data["streak"]), data["dropped"], tuple(data["frozen"]), tuple(data.get("reference", ())),
                   tuple(data.get("last_g", ())))


@dataclass(frozen=True)
class Decision:
    check: int
    scores: tuple[UnitScore, ...]
    drops: tuple[Drop, ...]  # the frontier's advance at this check, in order
    frozen: tuple[str, ...]  # units newly frozen at this check
    observed: tuple[dict[str, Any], ...] = ()  # per unit, what else the policy observed (recorded in layer_scores)


@dataclass(frozen=True)
class Observations:
    """What a policy sees at a check, per unit in forward order (``None``: dropped or frozen)."""

    d: tuple[float | None, ...]  # change since the last check (always measured)
    progress: float = 0.0  # share of the run's optimizer steps done, in [0, 1]
    grad_norm: tuple[float | None, ...] | None = None  # mean L1 gradient norm over the interval, if observed


def initial_state(units: Sequence[str], reference: Sequence[float] | None = None) -> PolicyState:
    """``reference``: per unit, the peak change it reached while it learned in an earlier run, in this
    run's units (fine-tuning from a recorded run); a unit's peak is then the larger of that and its own."""
    n = len(units)
    if reference is not None and len(reference) != n:
        raise ValueError(f"{len(reference)} reference peaks for {n} units")
    return PolicyState(tuple(units), 0, tuple(() for _ in range(n)), (0,) * n, 0, (),
                       tuple(float(r) for r in reference) if reference is not None else ())


def step(state: PolicyState, d: Sequence[float | None], cfg: PolicyConfig, allow_drop: bool = True
         ) -> tuple[PolicyState, Decision]:
    """One check. ``d[i]`` is unit i's change (``None`` for units that are dropped or frozen).

    ``allow_drop=False`` (the ``none`` policy) still scores and marks candidates but drops nothing.
    """
    t = state.check + 1
    n = len(state.units)
    history, s_now, c_now = score(state, d, cfg)
    streak, met = list(state.streak), [False] * n
    for i in range(n):
        if s_now[i] is None:
            continue
        rule = t > cfg.warmup and s_now[i] <= cfg.tau and c_now[i] is not None and c_now[i] <= cfg.kappa
        streak[i] = streak[i] + 1 if rule else 0
        met[i] = streak[i] >= cfg.patience

    # prefix rule: only the frontier drops; it advances over consecutive candidates (and frozen units).
    # The last unit before the head always keeps training.
    dropped, drops = state.dropped, []
    while allow_drop and dropped < n - 1 and (met[dropped] or dropped in state.frozen):
        i = dropped
        drops.append(Drop(state.units[i], i, s_now[i], c_now[i], _reason(state.units[i], s_now[i], c_now[i],
                                                                          cfg, frozen=i in state.frozen)))
        dropped += 1

    frozen = set(i for i in state.frozen if i >= dropped)
    newly_frozen = []
    if allow_drop and cfg.freeze_candidates:
        for i in range(dropped + 1, n - 1):
            if met[i] and i not in frozen:
                frozen.add(i)
                newly_frozen.append(state.units[i])

    scores = []
    for i, name in enumerate(state.units):
        if i < dropped:
            kind = DROPPED
        elif i in frozen:
            kind = FROZEN
        else:
            kind = CANDIDATE if met[i] else TRAINING
        scores.append(UnitScore(name, None if d[i] is None else float(d[i]), s_now[i], c_now[i], kind))
    new_state = replace(state, check=t, history=tuple(history), streak=tuple(streak), dropped=dropped,
                        frozen=tuple(sorted(frozen)))
    return new_state, Decision(t, tuple(scores), tuple(drops), tuple(newly_frozen))


def score(state: PolicyState, d: Sequence[float | None], cfg: PolicyConfig
          ) -> tuple[list[tuple[float, ...]], list[float | None], list[float | None]]:
    """Every unit's history with ``d`` appended, its change score ``s`` and continuation score ``c``
    (``None`` for units that are dropped, frozen or not measured). Every policy records them."""
    history = list(state.history)
    s_now: list[float | None] = [None] * len(state.units)
    c_now: list[float | None] = [None] * len(state.units)
    for i in range(len(state.units)):
        if i < state.dropped or i in state.frozen or d[i] is None:
            continue
        history[i] = (*history[i], float(d[i]))
        peak = max(max(history[i]), state.reference[i]) if state.reference else max(history[i])
        s_now[i] = change_score(history[i][-1], peak)
        c_now[i] = continuation_score(history[i], cfg.window)
    return history, s_now, c_now


def changes(observations: Observations | Sequence[float | None]) -> Sequence[float | None]:
    """The per-unit changes ``d`` (a plain sequence is taken as them)."""
    return observations.d if isinstance(observations, Observations) else observations


class Policy(Protocol):
    """A drop criterion. ``step``, ``start`` and ``lr_scales`` are pure: the same state, observations and
    config give the same answer."""

    name: str
    observes: frozenset[str]  # what the controller measures for it beyond d and progress: {"grad_norm"}

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]: ...

    def start(self, state: PolicyState, config: PolicyConfig) -> tuple[PolicyState, tuple[Drop, ...]]:
        """Drops before any training (freeze-first-k); none for the others."""

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        """Per unit, its learning-rate multiplier at ``progress`` (the head's is 1); None: all 1."""


class BasePolicy:
    """What a policy does unless it says otherwise: observes d only, no drop at the start, lr as given."""

    name = ""
    observes: frozenset[str] = frozenset()

    def start(self, state: PolicyState, config: PolicyConfig) -> tuple[PolicyState, tuple[Drop, ...]]:
        return state, ()

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        return None


class LearnDropPolicy(BasePolicy):
    """Learn&Drop: drop the frontier once its change has fallen to ``tau`` of its peak and is not rising."""

    name = "learndrop"

    def step(self, state: PolicyState, observations: Observations | Sequence[float | None], config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        return step(state, changes(observations), config)


class Baseline(BasePolicy):
    """The full training (policy ``none``): scores and candidates are recorded, nothing is dropped."""

    name = "none"

    def step(self, state: PolicyState, observations: Observations | Sequence[float | None], config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        return step(state, changes(observations), config, allow_drop=False)


def replay(units: Sequence[str], d_rows: Sequence[Sequence[float | None]], cfg: PolicyConfig,
           reference: Sequence[float] | None = None) -> list[Decision]:
    """Run a recorded history of changes through ``step`` with other thresholds (and the run's
    ``reference`` peaks, when it was fine-tuned from a recorded run).

    A unit that the recorded run dropped has no changes after its drop (``None``); the replay treats it
    as still meeting the rule from then on, since a dropped unit's parameters no longer move.
    """
    state, decisions = initial_state(units, reference), []
    for row in d_rows:
        state, decision = step(state, _fill_dropped(state, row), cfg)
        decisions.append(decision)
    return decisions


def _fill_dropped(state: PolicyState, row: Sequence[float | None]) -> list[float | None]:
    """For replay: a unit the recording stopped measuring (``None``) counts as not moving at all."""
    out: list[float | None] = []
    for i, v in enumerate(row):
        if v is None and i >= state.dropped and i not in state.frozen and state.history[i]:
            v = 0.0
        out.append(v)
    return out


def _reason(unit: str, s: float | None, c: float | None, cfg: PolicyConfig, frozen: bool) -> str:
    if frozen or s is None or c is None:
        return f"{unit} dropped: frozen earlier as a candidate, now at the front of the network"
    slowing = "still slowing down" if c < 1 else "no longer speeding up"
    wait = f" for {cfg.patience} checks" if cfg.patience > 1 else ""
    return (f"{unit} dropped: change {s:.2f} of its peak (tau {cfg.tau:g}), continuation {c:.2f} "
            f"(kappa {cfg.kappa:g}), {slowing}{wait}")
