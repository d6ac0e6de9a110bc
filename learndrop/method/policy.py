"""Drop policies: a name, its config and a pure ``step``, so a recorded run can be replayed through them.

A policy sees, at each check, what the controller observed of every unit still training (for
Learn&Drop, its change ``d`` since the last check) and returns its new state and a ``Decision``: every
unit's scores and state, the units the frontier advances over (dropped) and those frozen behind it. The
mechanics of dropping (freeze, optimizer surgery, cache) are the controller's, the same for every policy,
so a comparison between policies isolates the criterion. A policy is a class registered with
``method.registry.register_policy``: Learn&Drop's (``method.learn_drop``) and its peers (``method.peers``).

What a policy sees is explicit (``Observations``): every unit's change ``d`` (always measured, so the
record keeps it), the share of the run's optimizer steps done (``progress``) and, when the policy lists
``"grad_norm"`` in ``observes``, each unit's gradient norm averaged over the interval. A policy may also
scale each unit's learning rate (``lr_scales``, a pure function of its state and the progress) and drop
units before any training (``start``).

Learn&Drop's ``step``: the paper's ``rule`` (unit l is a candidate when the check is past ``warmup``, its
change score ``s = d / peak(d) <= tau`` and its continuation score ``c = d(t) / d(t - window) <= kappa``,
for ``patience`` checks in a row), then the prefix rule (``frontier_chain``: only candidates at the frontier
drop, and the last unit before the head always trains) and the frontier's ``advance`` through its gates
(pacing, rewinding, annealing). ``replay`` folds ``step`` over a recorded history (the threshold explorer).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..config import PolicyConfig
from .drop_reason import drop_reason
from .pace import due, pace_times
from .scores import change_score, continuation_score

TRAINING = "training"
CANDIDATE = "candidate"
FROZEN = "frozen"
DROPPED = "dropped"


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
    # per unit, its peak in the run it was fine-tuned from (inherited peaks)
    inherited: tuple[float, ...] = ()
    last_g: tuple[float, ...] = ()  # per unit, its gradient norm at the last check (AutoFreeze)
    # per unit: () or (check, progress, end progress) of its annealing
    anneal: tuple[tuple[float, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyState:
        """The inverse of ``to_dict`` (a checkpoint stores lists where the state has tuples)."""
        return cls(tuple(data["units"]), data["check"], tuple(tuple(h) for h in data["history"]),
                   tuple(data["streak"]), data["dropped"], tuple(data["frozen"]),
                   tuple(data.get("inherited", data.get("reference", ()))),
                   tuple(data.get("last_g", ())), tuple(tuple(a) for a in data.get("anneal", ())))


@dataclass(frozen=True)
class Decision:
    check: int
    scores: tuple[UnitScore, ...]
    drops: tuple[Drop, ...]  # the frontier's advance at this check, in order
    frozen: tuple[str, ...]  # units newly frozen at this check
    # per unit, what else the policy observed (recorded in unit_scores)
    observed: tuple[dict[str, Any], ...] = ()
    # units that would drop but for a rewind test not yet made (``rewind_eps``)
    untested: tuple[int, ...] = ()


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
    history, s_now, c_now = score(state, d, cfg)
    streak, met = rule(state, s_now, c_now, cfg, t)
    annealing = list(state.anneal) or [()] * len(state.units)
    chain = frontier_chain(state, met, annealing) if allow_drop else []
    moved = advance(state, chain, cfg, t, progress, rewind, annealing, s_now, c_now)
    frozen = {i for i in state.frozen if i >= moved.dropped}
    newly_frozen = []
    if allow_drop and cfg.freeze_candidates:  # candidates behind a unit still training: frozen, not dropped
        for i in range(moved.dropped + 1, len(state.units) - 1):
            if met[i] and i not in frozen and not annealing[i]:
                frozen.add(i)
                newly_frozen.append(state.units[i])
    scores = _unit_scores(state, d, s_now, c_now, met, annealing, moved.dropped, frozen)
    new_state = replace(state, check=t, history=tuple(history), streak=tuple(streak), dropped=moved.dropped,
                        frozen=tuple(sorted(frozen)), anneal=tuple(annealing) if cfg.anneal else state.anneal)
    observed = tuple(moved.observed) if any(moved.observed) else ()
    return new_state, Decision(t, scores, tuple(moved.drops), tuple(newly_frozen), observed,
                               tuple(moved.untested))


def rule(state: PolicyState, s_now: Sequence[float | None], c_now: Sequence[float | None], cfg: PolicyConfig,
         t: int) -> tuple[list[int], list[bool]]:
    """The paper's rule: a unit is a candidate once the check is past ``warmup``, ``s <= tau`` and
    ``c <= kappa``, for ``patience`` checks in a row. Per unit: its streak, and whether it is a candidate (the
    last unit before the head never is: it always trains)."""
    streak, met = list(state.streak), [False] * len(state.units)
    for i in range(len(state.units)):
        if s_now[i] is None:
            continue
        holds = t > cfg.warmup and s_now[i] <= cfg.tau and c_now[i] is not None and c_now[i] <= cfg.kappa
        streak[i] = streak[i] + 1 if holds else 0
        met[i] = streak[i] >= cfg.patience and i < len(state.units) - 1
    return streak, met


def frontier_chain(state: PolicyState, met: Sequence[bool], annealing: Sequence[tuple]) -> list[int]:
    """The prefix rule: the units the frontier could advance over now, consecutive from it: candidates, units
    annealing, units frozen earlier (never the last unit before the head)."""
    chain, i = [], state.dropped
    while i < len(state.units) - 1 and (met[i] or annealing[i] or i in state.frozen):
        chain.append(i)
        i += 1
    return chain


@dataclass
class Advance:
    """How far the frontier moved at a check, and what the gates on the way saw."""

    dropped: int
    drops: list[Drop]
    # units the rewind gate has still to test (the controller tests them, then asks again)
    untested: list[int]
    observed: list[dict[str, Any]]  # per unit: its rewind test, when its annealing began


def advance(state: PolicyState, chain: Sequence[int], cfg: PolicyConfig, t: int, progress: float,
            rewind: Sequence[float | None] | None, annealing: list[tuple], s_now: Sequence[float | None],
            c_now: Sequence[float | None]) -> Advance:
    """The frontier's advance over ``chain``: with ``paced``, only as far as the pace's times allow at
    ``progress``; a candidate then passes the rewind gate (if any), then, with ``anneal``, has its learning
    rate annealed to 0 for that many checks (``annealing`` is updated)."""
    moved = Advance(state.dropped, [], [], [{} for _ in state.units])
    if cfg.paced:  # the pace gate: the frontier waits for the pace's time of its next unit
        times = pace_times(len(state.units), cfg)
        chain = list(itertools.takewhile(lambda i: due(i, times, progress), chain))
        for i in chain:
            moved.observed[i]["due"] = round(times[i], 6)
    gated = [i for i in chain if cfg.rewind_eps > 0 and not annealing[i] and i not in state.frozen]
    for i in gated:
        if rewind is None or rewind[i] is None:
            moved.untested.append(i)
        else:
            moved.observed[i]["rewind"] = round(float(rewind[i]), 6)
    for i in chain:
        if i in gated and not (rewind is not None and rewind[i] is not None and rewind[i] <= cfg.rewind_eps):
            break  # the rewind gate: its last interval still mattered to the loss (or it is not tested yet)
        if cfg.anneal and i not in state.frozen and not _annealed(i, annealing, t, progress, cfg, moved):
            continue  # the anneal gate: its learning rate still on its way to 0 (or a unit before it is)
        if moved.dropped != i:
            break
        reason = drop_reason(state.units[i], s_now[i], c_now[i], cfg, annealing[i], i in state.frozen,
                             moved.observed[i])
        moved.drops.append(Drop(state.units[i], i, s_now[i], c_now[i], reason))
        moved.dropped += 1
    return moved


def _annealed(i: int, annealing: list[tuple], t: int, progress: float, cfg: PolicyConfig,
              moved: Advance) -> bool:
    """Start unit i's annealing if it has not begun; whether it is over and the unit is at the frontier."""
    if not annealing[i]:
        annealing[i] = (t, progress, progress + cfg.anneal * progress / t)
    moved.observed[i]["anneal_from"] = int(annealing[i][0])
    return t - annealing[i][0] >= cfg.anneal and moved.dropped == i


def _unit_scores(state: PolicyState, d: Sequence[float | None], s_now: Sequence[float | None],
                 c_now: Sequence[float | None], met: Sequence[bool], annealing: Sequence[tuple], dropped: int,
                 frozen: set[int]) -> tuple[UnitScore, ...]:
    scores = []
    for i, name in enumerate(state.units):
        if i < dropped:
            kind = DROPPED
        elif i in frozen:
            kind = FROZEN
        else:
            kind = CANDIDATE if met[i] or annealing[i] else TRAINING
        scores.append(UnitScore(name, None if d[i] is None else float(d[i]), s_now[i], c_now[i], kind))
    return tuple(scores)


def score(state: PolicyState, d: Sequence[float | None], cfg: PolicyConfig
          ) -> tuple[list[tuple[float, ...]], list[float | None], list[float | None]]:
    """Every unit's history with ``d`` appended, its change score ``s`` and continuation score ``c``
    (``None`` for units that are dropped, frozen or not measured). Every policy records them.

    ``s`` is ``d`` over the unit's own peak (``cfg.peak == "own"``, the paper's: with the peak it inherited,
    when fine-tuned from a recorded run), or over the largest ``d`` of any unit at this check (``"network"``:
    how much the unit still changes next to the rest of the network, a scale every network has from its first
    check, a downloaded one included)."""
    history = list(state.history)
    s_now: list[float | None] = [None] * len(state.units)
    c_now: list[float | None] = [None] * len(state.units)
    now = [float(v) for i, v in enumerate(d) if v is not None and i >= state.dropped
           and i not in state.frozen]
    network = max(now, default=0.0)
    for i in range(len(state.units)):
        if i < state.dropped or i in state.frozen or d[i] is None:
            continue
        history[i] = (*history[i], float(d[i]))
        peak = max(max(history[i]), state.inherited[i]) if state.inherited else max(history[i])
        s_now[i] = change_score(history[i][-1], network if cfg.peak == "network" else peak)
        c_now[i] = continuation_score(history[i], cfg.window)
    return history, s_now, c_now


def replay(units: Sequence[str], d_rows: Sequence[Sequence[float | None]], cfg: PolicyConfig,
           inherited: Sequence[float] | None = None,
           rewind_rows: Sequence[Sequence[float | None]] | None = None,
           progress: Sequence[float] | None = None) -> list[Decision]:
    """Run a recorded history of changes through ``step`` with other thresholds (and the run's
    ``inherited`` peaks, when it was fine-tuned from a recorded run).

    A unit that the recorded run dropped has no changes after its drop (``None``); the replay treats it
    as still meeting the rule from then on, since a dropped unit's parameters no longer move. The rewind
    gate uses the tests the run made (``rewind_rows``); a test it never made cannot be made now, and
    counts as passed. Annealing is replayed in checks (a candidate drops ``anneal`` checks later). The pace
    gate uses ``progress``, the share of training done at each check (default: checks evenly spaced over a
    finished run).
    """
    state, decisions = initial_state(units, inherited), []
    for t, row in enumerate(d_rows):
        recorded = rewind_rows[t] if rewind_rows is not None and t < len(rewind_rows) else [None] * len(units)
        tests = [0.0 if r is None else r for r in recorded]
        done = progress[t] if progress is not None else (t + 1) / len(d_rows)
        state, decision = step(state, _fill_dropped(state, row), cfg, progress=done, rewind=tests)
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
