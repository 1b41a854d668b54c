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
delete call), handed the ids as arrays and removing them a chunk of ids at a time.
"""

from __future__ import annotations

import enum
import os
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union
from urllib.parse import unquote, urlparse

from mlmd_exercise import process
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.records import INPUT_EVENTS, ArtifactRecord, ExecutionState
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

if TYPE_CHECKING:
    from mlmd_exercise.where import Expr

__all__ = ["PrunePlan", "PlannedRun", "PlannedArtifact", "KeepReason", "Kept", "plan_prune", "prune", "local_files",
           "parse_age", "KILL_POINT"]

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


class PlannedRun(NamedTuple):
    """A run a prune removes: what the plan says of it (a record's properties are not held:
    a plan of 200,000 runs holds these, not 200,000 records)."""

    id: int
    type: str
    state: str


class PlannedArtifact(NamedTuple):
    """An artifact a prune removes: what the plan says of it, and its URI for `local_files`."""

    id: int
    type: str
    uri: str


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
    executions: List[PlannedRun] = field(default_factory=list)
    artifacts: List[PlannedArtifact] = field(default_factory=list)
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


def _candidates(store: Store, cutoff_ms: int, context_id: Optional[int], states: Optional[Sequence[str]],
                where: Optional["Expr"] = None) -> Tuple[Dict[int, PlannedRun], List[int]]:
    """The runs old enough (and of the context, states and filter asked for), by id; and the
    RUNNING ones among them whose process may be alive (the rule of `states` and `abandon`),
    spared and left out of the first. Read a page at a time; only what the plan says is held."""
    found: Dict[int, PlannedRun] = {}
    spared: List[int] = []
    start_times: Dict[int, Optional[int]] = {}
    last = 0
    while True:
        page = store.backend.executions(Query(id_above=last, context_id=context_id, states=states, order="id",
                                              ascending=True, limit=5000, where=where))
        if not page:
            return found, spared
        last = page[-1].id
        for e in page:
            if e.when_ms >= cutoff_ms:
                continue
            if e.state == ExecutionState.RUNNING.value and not process.is_gone(e.properties, start_times):
                spared.append(e.id)
            else:
                found[e.id] = PlannedRun(e.id, e.type, e.state)


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
    candidates, spared = _candidates(store, cutoff_ms, context_id, states, where)
    lineage = _Lineage.read(store, candidates, cutoff_ms)
    protected = lineage.protected
    for i in keep:
        if i in lineage.stored:
            protected[i] = (i, Kept(KeepReason.KEEP))
    kept = lineage.keep_upstream(protected)
    touched, stored = lineage.touched, lineage.stored
    del lineage  # who touched what: not needed past here, and as large as the rest of the plan
    roots = sorted(set(kept.values()) & stored)
    records = {a.id: a for chunk in _chunked(roots) for a in store.backend.artifacts(Query(ids=chunk))}
    gone = [i for i in touched if i not in protected and i in stored]
    del stored
    return PrunePlan(
        cutoff_ms, candidates=len(candidates), spared_running=spared,
        executions=[candidates[i] for i in sorted(candidates) if i not in kept],
        artifacts=[PlannedArtifact(a.id, a.type, a.uri) for chunk in _chunked(gone)
                   for a in sorted(store.backend.artifacts(Query(ids=chunk)), key=lambda a: a.id)],
        touched=touched, kept_runs=kept,
        protected={root: (records[root], protected[root][1]) for root in roots if root in records})


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


# artifact id -> (the kept artifact whose lineage keeps it, why that one is kept)
Protected = Dict[int, Tuple[int, Kept]]


@dataclass
class _Lineage:
    """The candidates' lineage, one hop: what they touched, and who else touched it. Ids
    only: the records and events are read a chunk at a time and dropped."""

    candidates: Dict[int, PlannedRun]
    touched: List[int]  # every artifact a candidate used or made, by id
    stored: Set[int]  # those still in the store as they are read
    # The touched artifacts that stay whatever the candidates do: used or made by a run that
    # is no candidate (the first such run), or newer than the cut-off.
    protected: "Protected" = field(default_factory=dict)
    by_run: "_Index" = field(default_factory=lambda: _Index())  # candidate -> the artifacts it touched
    runs_of: "_Index" = field(default_factory=lambda: _Index())  # artifact -> the candidates that touched it
    makers: "_Index" = field(default_factory=lambda: _Index())  # artifact -> the candidates that output it

    @classmethod
    def read(cls, store: Store, candidates: Dict[int, PlannedRun], cutoff_ms: int) -> "_Lineage":
        backend = store.backend
        touched: Set[int] = set()
        for chunk in _chunked(sorted(candidates)):
            touched.update(e.artifact_id for e in backend.events_by_executions(chunk))
        lineage = cls(candidates, sorted(touched), set())
        del touched
        newer: List[int] = []
        runs, artifacts, made = array("q"), array("q"), array("b")  # the candidates' events, as columns
        for chunk in _chunked(lineage.touched):
            for a in backend.artifacts(Query(ids=chunk)):
                lineage.stored.add(a.id)
                if a.when_ms >= cutoff_ms:
                    newer.append(a.id)
            for e in backend.events_by_artifacts(chunk):
                if e.execution_id in candidates:
                    runs.append(e.execution_id)
                    artifacts.append(e.artifact_id)
                    made.append(e.type not in INPUT_EVENTS)
                elif e.artifact_id not in lineage.protected:
                    lineage.protected[e.artifact_id] = (e.artifact_id, Kept(KeepReason.USED, e.execution_id))
        for i in newer:
            if i not in lineage.protected:
                lineage.protected[i] = (i, Kept(KeepReason.NEWER))
        lineage.by_run, lineage.runs_of = _Index(runs, artifacts), _Index(artifacts, runs)
        lineage.makers = _Index(array("q", (a for a, m in zip(artifacts, made) if m)),
                                array("q", (r for r, m in zip(runs, made) if m)))
        return lineage

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
            readers = self.runs_of.get(artifact, ())
            stays = any(r in kept for r in readers) or protected[artifact][1].reason is KeepReason.USED
            if readers and not stays:
                run = min(readers)
                self._keep_run(run, protected[artifact][0], protected[artifact], protected, kept)
                queue += sorted(self.by_run.get(run, ()))
        return queue


class _Index:
    """key -> the values paired with it, from two columns of ids sorted by key: a run's
    artifacts, an artifact's runs, in 16 bytes a pair where a dict of sets took about 200."""

    def __init__(self, keys: Sequence[int] = (), values: Sequence[int] = ()) -> None:
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = array("q", (keys[i] for i in order))
        self.values = array("q", (values[i] for i in order))

    def get(self, key: int, default: Sequence[int] = ()) -> Sequence[int]:
        first = bisect_left(self.keys, key)
        found = self.values[first:bisect_right(self.keys, key, first)]
        return found if found else default


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
    runs = array("q", sorted(e.id for e in plan.executions))  # 8 bytes an id, where a list of ints takes 36
    gone = array("q", sorted(a.id for a in plan.artifacts))
    if archive is not None:
        from mlmd_exercise.bundle import BundleError, bundle_ids
        from mlmd_exercise.read.export import export_bundle

        export_bundle(store, archive, runs, plan.touched, selection={"pruned_before_ms": plan.cutoff_ms})
        back = bundle_ids(archive)
        if back["execution"] != runs or not _within(gone, back["artifact"]):
            raise BundleError(f"archive '{archive}' read back does not hold every pruned node: nothing removed")
        del back  # what the archive holds, checked: not needed for the removal
    kill_at = os.environ.get(KILL_POINT)

    def each(table: str) -> None:
        if step is not None:
            step(table)
        if kill_at == table:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    return store.backend.delete_nodes(runs, gone, each)


def _within(ids: Sequence[int], sorted_ids: Sequence[int]) -> bool:
    """Whether every one of `ids` is among `sorted_ids` (ascending)."""
    for i in ids:
        at = bisect_left(sorted_ids, i)
        if at == len(sorted_ids) or sorted_ids[at] != i:
            return False
    return True


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
