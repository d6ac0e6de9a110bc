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

import math
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
    inherited: tuple[float, ...] = ()  # per unit, its peak in the run it was fine-tuned from (inherited peaks)
    last_g: tuple[float, ...] = ()  # per unit, its gradient norm at the last check (AutoFreeze)
    anneal: tuple[tuple[float, ...], ...] = ()  # per unit: () or (check, progress, end progress) of its annealing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyState:
        """The inverse of ``to_dict`` (a checkpoint stores lists where the state has tuples)."""
        return cls(tuple(data["units"]), data["check"], tuple(tuple(h) for h in data["history"]),
                   tuple(data["streak"]), data["dropped"], tuple(data["frozen"]), tuple(data.get("inherited", data.get("reference", ()))),
                   tuple(data.get("last_g", ())), tuple(tuple(a) for a in data.get("anneal", ())))


@dataclass(frozen=True)
class Decision:
    check: int
    scores: tuple[UnitScore, ...]
    drops: tuple[Drop, ...]  # the frontier's advance at this check, in order
    frozen: tuple[str, ...]  # units newly frozen at this check
    observed: tuple[dict[str, Any], ...] = ()  # per unit, what else the policy observed (recorded in layer_scores)
    untested: tuple[int, ...] = ()  # units that would drop but for a rewind test not yet made (``rewind_eps``)


@dataclass(frozen=True)
class Observations:
    """What a policy sees at a check, per unit in forward order (``None``: dropped or frozen)."""

    d: tuple[float | None, ...]  # change since the last check (always measured)
    progress: float = 0.0  # share of the run's optimizer steps done, in [0, 1]
    grad_norm: tuple[float | None, ...] | None = None  # mean L1 gradient norm over the interval, if observed
    rewind: tuple[float | None, ...] | None = None  # the rewind test's relative probe-loss change, where made


def initial_state(units: Sequence[str], inherited: Sequence[float] | None = None) -> PolicyState:
    """``inherited``: per unit, the peak change it reached while it learned in an earlier run, in this
    run's units (fine-tuning from a recorded run); a unit's peak is then the larger of that and its own."""
    n = len(units)
    if inherited is not None and len(inherited) != n:
        raise ValueError(f"{len(inherited)} inherited peaks for {n} units")
    return PolicyState(tuple(units), 0, tuple(() for _ in range(n)), (0,) * n, 0, (),
                       tuple(float(r) for r in inherited) if inherited is not None else ())


def step(state: PolicyState, d: Sequence[float | None], cfg: PolicyConfig, allow_drop: bool = True,
         progress: float = 0.0, rewind: Sequence[float | None] | None = None) -> tuple[PolicyState, Decision]:
    """One check. ``d[i]`` is unit i's change (``None`` for units that are dropped or frozen).

    ``allow_drop=False`` (the ``none`` policy) still scores and marks candidates but drops nothing.
    ``progress`` (the share of the run done) times the annealing; ``rewind[i]`` is unit i's rewind test,
    where the controller made one (``Decision.untested`` lists the units it still has to test).
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
    # The last unit before the head always keeps training. A candidate first passes the rewind gate (if
    # any), then, with ``anneal``, has its learning rate annealed to 0 for that many checks before it drops.
    annealing = list(state.anneal) or [()] * n
    observed: list[dict[str, Any]] = [{} for _ in range(n)]
    dropped, drops, untested = state.dropped, [], []
    chain = []
    i = dropped
    while allow_drop and i < n - 1 and (met[i] or annealing[i] or i in state.frozen):
        chain.append(i)
        i += 1
    gated = {i for i in chain if cfg.rewind_eps > 0 and not annealing[i] and i not in state.frozen}
    for i in chain:
        if i in gated:
            r = rewind[i] if rewind is not None else None
            if r is None:
                untested.append(i)
            else:
                observed[i]["rewind"] = round(float(r), 6)
    for i in chain:
        if i in gated and not (rewind is not None and rewind[i] is not None and rewind[i] <= cfg.rewind_eps):
            break
        if cfg.anneal and i not in state.frozen:
            if not annealing[i]:
                annealing[i] = (t, progress, progress + cfg.anneal * progress / t)
            observed[i]["anneal_from"] = int(annealing[i][0])
            if t - annealing[i][0] < cfg.anneal or dropped != i:
                continue
        if dropped != i:
            break
        reason = _reason(state.units[i], s_now[i], c_now[i], cfg, frozen=i in state.frozen)
        if annealing[i]:
            reason = (f"{state.units[i]} dropped: a candidate since check {int(annealing[i][0])}, its learning rate "
                      f"annealed to 0 over {cfg.anneal} checks")
        if "rewind" in observed[i]:
            reason += f"; rewinding its last interval changed the probe loss by {100 * observed[i]['rewind']:.2g} %"
        drops.append(Drop(state.units[i], i, s_now[i], c_now[i], reason))
        dropped += 1

    frozen = set(i for i in state.frozen if i >= dropped)
    newly_frozen = []
    if allow_drop and cfg.freeze_candidates:
        for i in range(dropped + 1, n - 1):
            if met[i] and i not in frozen and not annealing[i]:
                frozen.add(i)
                newly_frozen.append(state.units[i])

    scores = []
    for i, name in enumerate(state.units):
        if i < dropped:
            kind = DROPPED
        elif i in frozen:
            kind = FROZEN
        else:
            kind = CANDIDATE if met[i] or annealing[i] else TRAINING
        scores.append(UnitScore(name, None if d[i] is None else float(d[i]), s_now[i], c_now[i], kind))
    new_state = replace(state, check=t, history=tuple(history), streak=tuple(streak), dropped=dropped,
                        frozen=tuple(sorted(frozen)), anneal=tuple(annealing) if cfg.anneal else state.anneal)
    return new_state, Decision(t, tuple(scores), tuple(drops), tuple(newly_frozen),
                               tuple(observed) if any(observed) else (), tuple(untested))


def anneal_scales(state: PolicyState, progress: float) -> list[float] | None:
    """Per unit, its learning-rate multiplier while annealing: a cosine from 1 at the check it became a
    candidate to 0 at the end of its window; 1 for every other unit; None when none anneals."""
    if not any(state.anneal):
        return None
    out = []
    for i, a in enumerate(state.anneal):
        if not a or i < state.dropped or a[2] <= a[1]:
            out.append(1.0)
            continue
        x = min(1.0, max(0.0, (progress - a[1]) / (a[2] - a[1])))
        out.append(0.5 * (1.0 + math.cos(math.pi * x)))
    return out


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
        peak = max(max(history[i]), state.inherited[i]) if state.inherited else max(history[i])
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
    observes: frozenset[str]  # beyond d: "grad_norm" (measured for it), "progress" (it acts on the share done)

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
        if isinstance(observations, Observations):
            return step(state, observations.d, config, progress=observations.progress, rewind=observations.rewind)
        return step(state, observations, config)

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        return anneal_scales(state, progress) if config.anneal else None


class Baseline(BasePolicy):
    """The full training (policy ``none``): scores and candidates are recorded, nothing is dropped."""

    name = "none"

    def step(self, state: PolicyState, observations: Observations | Sequence[float | None], config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        return step(state, changes(observations), config, allow_drop=False)


def replay(units: Sequence[str], d_rows: Sequence[Sequence[float | None]], cfg: PolicyConfig,
           inherited: Sequence[float] | None = None,
           rewind_rows: Sequence[Sequence[float | None]] | None = None) -> list[Decision]:
    """Run a recorded history of changes through ``step`` with other thresholds (and the run's
    ``inherited`` peaks, when it was fine-tuned from a recorded run).

    A unit that the recorded run dropped has no changes after its drop (``None``); the replay treats it
    as still meeting the rule from then on, since a dropped unit's parameters no longer move. The rewind
    gate uses the tests the run made (``rewind_rows``); a test it never made cannot be made now, and
    counts as passed. Annealing is replayed in checks (a candidate drops ``anneal`` checks later).
    """
    state, decisions = initial_state(units, inherited), []
    for t, row in enumerate(d_rows):
        recorded = rewind_rows[t] if rewind_rows is not None and t < len(rewind_rows) else [None] * len(units)
        tests = [0.0 if r is None else r for r in recorded]
        state, decision = step(state, _fill_dropped(state, row), cfg, rewind=tests)
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
