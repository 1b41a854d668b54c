"""Pruning: removing old runs, and the artifacts and events only they used, without ever
breaking the lineage of anything kept.

What is kept (protected): every artifact newer than the cut-off, every artifact named to
keep, every artifact a run that is not pruned used or made, and everything upstream of
any of those. A candidate run (older than the cut-off, of the experiment and states asked
for) that made a protected artifact is therefore kept, and so are its inputs and outputs,
and so on up; so is a candidate whose removal would leave a kept artifact with no event at
all (`check` would flag it). A RUNNING run is never a candidate unless its process is known
to be gone (the rule `states` and `abandon` use): a training started before the cut-off and
still going is spared, and so is everything it used. What is left of the candidates goes, with the artifacts none
but they touched. Contexts and types stay; files on disk are never touched.

The selection reads plain records through the Backend interface; the removal is the
backend's `delete_nodes`, one transaction (only the native backend can: MLMD has no
delete call).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union
from urllib.parse import unquote, urlparse

from mlmd_exercise import process
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.records import INPUT_EVENTS, ArtifactRecord, EventRecord, ExecutionRecord, ExecutionState
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

if TYPE_CHECKING:
    from mlmd_exercise.where import Expr

__all__ = ["PrunePlan", "KeepReason", "Kept", "plan_prune", "prune", "local_files", "parse_age", "KILL_POINT"]

_CHUNK = 2000
# Set to a table's name (e.g. "Event"), the process kills itself once that table's rows are
# gone, inside the transaction: how tests show that a crash mid-prune leaves before-or-after.
KILL_POINT = "MLMD_EXERCISE_PRUNE_KILL_AT"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> int:
    """"90d" (also s, m, h, w) as milliseconds.

    Raises:
        MlmdExerciseError: not a number followed by one of those units.
    """
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _UNITS or not number.isdigit():
        raise MlmdExerciseError(f"'{text}' is not an age: give a whole number and a unit, e.g. 90d, 12h, 30m")
    return int(number) * _UNITS[unit] * 1000


@dataclass
class PrunePlan:
    """What a prune removes and what it keeps, and why.

    Attributes:
        cutoff_ms: runs that started before this are candidates.
        executions: the runs to remove.
        artifacts: the artifacts to remove (none but those runs touched them).
        touched: every artifact those runs used or made (the kept ones too: an archive holds them).
        kept_runs: candidate run id -> the kept artifact whose lineage it protects.
        protected: the kept artifacts that protect kept runs, by id, and why each is kept
            (`Kept`: its `reason`, a KeepReason, and `str()` the plan's text).
        candidates: how many runs were old enough (and of the experiment and states asked for),
            not counting the spared ones.
        spared_running: RUNNING runs old enough whose process may be alive, spared (ids).
    """

    cutoff_ms: int
    executions: List[ExecutionRecord] = field(default_factory=list)
    artifacts: List[ArtifactRecord] = field(default_factory=list)
    touched: List[int] = field(default_factory=list)
    kept_runs: Dict[int, int] = field(default_factory=dict)
    protected: Dict[int, Tuple[ArtifactRecord, "Kept"]] = field(default_factory=dict)
    candidates: int = 0
    spared_running: List[int] = field(default_factory=list)

    def by_type_and_state(self) -> Dict[Tuple[str, str], int]:
        counts: Dict[Tuple[str, str], int] = {}
        for e in self.executions:
            counts[(e.type, e.state)] = counts.get((e.type, e.state), 0) + 1
        return counts

    def artifacts_by_type(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for a in self.artifacts:
            counts[a.type] = counts.get(a.type, 0) + 1
        return counts


def _candidates(store: Store, cutoff_ms: int, context_id: Optional[int],
                states: Optional[Sequence[str]], where: Optional["Expr"] = None) -> Dict[int, ExecutionRecord]:
    found: Dict[int, ExecutionRecord] = {}
    last = 0
    while True:
        page = store.backend.executions(Query(id_above=last, context_id=context_id, states=states, order="id",
                                              ascending=True, limit=5000, where=where))
        if not page:
            return found
        last = page[-1].id
        found.update({e.id: e for e in page if e.when_ms < cutoff_ms})


def _chunked(ids: Sequence[int]):
    ids = list(ids)
    for first in range(0, len(ids), _CHUNK):
        yield ids[first:first + _CHUNK]


class KeepReason(enum.Enum):
    """Why a prune keeps an artifact (and, with it, its whole lineage): its text, for the plan."""

    USED = "used or made by run {run}, which stays"  # a run that is not pruned touched it
    KEEP = "kept by --keep"
    NEWER = "newer than the cut-off"


@dataclass(frozen=True)
class Kept:
    """Why one artifact is kept: the reason, and the run that stays where that is the reason."""

    reason: KeepReason
    run: Optional[int] = None

    def __str__(self) -> str:
        return self.reason.value.format(run=self.run)


def plan_prune(store: Store, cutoff_ms: int, *, context_id: Optional[int] = None,
               states: Optional[Sequence[str]] = None, keep: Sequence[int] = (),
               where: Optional["Expr"] = None) -> PrunePlan:
    """What pruning the runs that started before `cutoff_ms` removes (see the module).

    Args:
        store: an open store (any backend: planning only reads).
        cutoff_ms: ms since the epoch; a run's start is its original time where imported.
        context_id: only runs of this context (experiment) are candidates.
        states: only runs in these states (ExecutionState names) are candidates.
        keep: artifact ids kept whatever their age, with their whole lineage.
        where: only runs this filter query (`where.parse`'s tree, of executions) matches are candidates.

    Raises:
        NotFoundError: an id of `keep` is no artifact of the store.
        MlmdExerciseError: an unknown state.
    """
    keep = _checked_keep(store, states, keep)
    candidates = _candidates(store, cutoff_ms, context_id, states, where)
    spared = _spare_running(candidates)
    lineage = _Lineage.read(store, candidates)
    protected = lineage.kept_by_other_runs()
    for a in lineage.artifacts.values():
        if a.id in keep:
            protected[a.id] = (a.id, Kept(KeepReason.KEEP))
        elif a.when_ms >= cutoff_ms and a.id not in protected:
            protected[a.id] = (a.id, Kept(KeepReason.NEWER))
    kept = lineage.keep_upstream(protected)
    artifacts = lineage.artifacts
    return PrunePlan(
        cutoff_ms, candidates=len(candidates), spared_running=spared,
        executions=[candidates[i] for i in sorted(candidates) if i not in kept],
        artifacts=[artifacts[i] for i in lineage.touched if i not in protected and i in artifacts],
        touched=lineage.touched, kept_runs=kept,
        protected={root: (artifacts[root], protected[root][1]) for root in set(kept.values()) if root in artifacts})


def _checked_keep(store: Store, states: Optional[Sequence[str]], keep: Sequence[int]) -> List[int]:
    """`keep` as sorted ids, each an artifact of the store; `states` known.

    Raises:
        NotFoundError, MlmdExerciseError: as `plan_prune`.
    """
    for s in states or ():
        if s not in ExecutionState.__members__:
            raise MlmdExerciseError(f"unknown state '{s}': use {', '.join(ExecutionState.__members__)}")
    ids = sorted({int(i) for i in keep})
    if ids:
        known = {a.id for a in store.backend.artifacts(Query(ids=ids))}
        missing = [i for i in ids if i not in known]
        if missing:
            raise NotFoundError(f"no artifact with id {missing[0]} in {store} (--keep)")
    return ids


def _spare_running(candidates: Dict[int, ExecutionRecord]) -> List[int]:
    """Takes out of `candidates` the RUNNING runs whose process may be alive (the rule of
    `states` and `abandon`); their ids."""
    start_times: Dict[int, Optional[int]] = {}
    spared = sorted(i for i, e in candidates.items()
                    if e.state == ExecutionState.RUNNING.value and not process.is_gone(e.properties, start_times))
    for i in spared:
        del candidates[i]
    return spared


# artifact id -> (the kept artifact whose lineage keeps it, why that one is kept)
Protected = Dict[int, Tuple[int, Kept]]


@dataclass
class _Lineage:
    """The candidates' lineage, one hop: what they touched, and who else touched it."""

    candidates: Dict[int, ExecutionRecord]
    touched: List[int]  # every artifact a candidate used or made, by id
    artifacts: Dict[int, ArtifactRecord]  # those, as stored
    events: List[EventRecord]  # every event of those artifacts (of any run)
    by_run: Dict[int, Set[int]] = field(default_factory=dict)  # candidate -> the artifacts it touched
    runs_of: Dict[int, Set[int]] = field(default_factory=dict)  # artifact -> the candidates that touched it
    makers: Dict[int, Set[int]] = field(default_factory=dict)  # artifact -> the candidates that output it

    @classmethod
    def read(cls, store: Store, candidates: Dict[int, ExecutionRecord]) -> "_Lineage":
        backend = store.backend
        events: List[EventRecord] = []
        for chunk in _chunked(sorted(candidates)):
            events += backend.events_by_executions(chunk)
        touched = sorted({e.artifact_id for e in events})
        artifacts: Dict[int, ArtifactRecord] = {}
        every: List[EventRecord] = []
        for chunk in _chunked(touched):
            artifacts.update({a.id: a for a in backend.artifacts(Query(ids=chunk))})
            every += backend.events_by_artifacts(chunk)
        lineage = cls(candidates, touched, artifacts, every)
        for e in every:
            if e.execution_id in candidates:
                lineage.by_run.setdefault(e.execution_id, set()).add(e.artifact_id)
                lineage.runs_of.setdefault(e.artifact_id, set()).add(e.execution_id)
                if e.type not in INPUT_EVENTS:
                    lineage.makers.setdefault(e.artifact_id, set()).add(e.execution_id)
        return lineage

    def kept_by_other_runs(self) -> Protected:
        """The touched artifacts a run that is no candidate used or made: they stay."""
        protected: Protected = {}
        for e in self.events:
            if e.execution_id not in self.candidates and e.artifact_id not in protected:
                protected[e.artifact_id] = (e.artifact_id, Kept(KeepReason.USED, e.execution_id))
        return protected

    def keep_upstream(self, protected: Protected) -> Dict[int, int]:
        """The candidates to keep (run -> the kept artifact whose lineage it is in), adding
        to `protected` everything they touched: the makers of every kept artifact, all the
        way up, and a reader of each kept artifact that would otherwise be left with no event."""
        kept: Dict[int, int] = {}
        queue = list(protected)
        while queue:
            self._makers_of(queue, protected, kept)
            queue = self._last_readers(protected, kept)
        return kept

    def _keep_run(self, run: int, root: int, why: Tuple[int, Kept], protected: Protected,
                  kept: Dict[int, int]) -> List[int]:
        """Keeps `run` for `root`; the artifacts it touched that were not kept yet (now kept)."""
        kept[run] = root
        added = [other for other in sorted(self.by_run.get(run, ())) if other not in protected]
        for other in added:
            protected[other] = why
        return added

    def _makers_of(self, queue: List[int], protected: Protected, kept: Dict[int, int]) -> None:
        """Everything upstream of the queued kept artifacts stays, and all its runs touched."""
        while queue:
            artifact = queue.pop()
            root = protected[artifact][0]
            for run in sorted(self.makers.get(artifact, ())):
                if run not in kept:
                    queue += self._keep_run(run, root, (root, protected[root][1]), protected, kept)

    def _last_readers(self, protected: Protected, kept: Dict[int, int]) -> List[int]:
        """A kept artifact read only by runs that go would be left with no event: keeps one
        reader of each; the artifacts whose makers must now be kept too."""
        queue: List[int] = []
        for artifact in sorted(protected):
            readers = self.runs_of.get(artifact, set())
            stays = any(r in kept for r in readers) or protected[artifact][1].reason is KeepReason.USED
            if readers and not stays:
                run = min(readers)
                self._keep_run(run, protected[artifact][0], protected[artifact], protected, kept)
                queue += sorted(self.by_run.get(run, ()))
        return queue


def prune(store: Store, plan: PrunePlan, *, archive: Union[str, os.PathLike, None] = None,
          step: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Removes what `plan` says, in one transaction, after writing it to `archive` (a
    bundle, read back and checked first: nothing is removed unless that worked).

    Returns:
        Rows removed per table.

    Raises:
        StoreError: the store's backend cannot remove nodes (open it with the native one).
        BundleError, OSError: the archive could not be written or read back.
    """
    if archive is not None:
        from mlmd_exercise.bundle import BundleError, read_bundle
        from mlmd_exercise.read.export import export_bundle

        export_bundle(store, archive, [e.id for e in plan.executions], plan.touched,
                      selection={"pruned_before_ms": plan.cutoff_ms})
        back = read_bundle(archive)
        if {x["id"] for x in back.executions} != {e.id for e in plan.executions} \
                or not {a.id for a in plan.artifacts} <= {a["id"] for a in back.artifacts}:
            raise BundleError(f"archive '{archive}' read back does not hold every pruned node: nothing removed")
    kill_at = os.environ.get(KILL_POINT)

    def each(table: str) -> None:
        if step is not None:
            step(table)
        if kill_at == table:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    return store.backend.delete_nodes([e.id for e in plan.executions], [a.id for a in plan.artifacts], each)


def local_files(store: Store, plan: PrunePlan) -> List[str]:
    """The local files (file:// URIs and plain paths) that pruned artifacts referred to and
    no artifact left in the store refers to, that exist: for the user to remove."""
    uris = sorted({a.uri for a in plan.artifacts if a.uri})
    gone = {a.id for a in plan.artifacts}
    still: Set[str] = set()
    for chunk in _chunked(uris):  # type: ignore[arg-type]
        still.update(a.uri for a in store.backend.artifacts(Query(uris=chunk)) if a.id not in gone)
    found = []
    for uri in uris:
        if uri in still:
            continue
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            path = unquote(parsed.path)
        elif parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive)
            path = uri
        else:
            continue
        if os.path.exists(path):
            found.append(path)
    return found
