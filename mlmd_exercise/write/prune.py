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

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union
from urllib.parse import unquote, urlparse

from mlmd_exercise import process
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.records import INPUT_EVENTS, ArtifactRecord, EventRecord, ExecutionRecord, ExecutionState
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["PrunePlan", "plan_prune", "prune", "local_files", "parse_age", "KILL_POINT"]

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
        protected: the kept artifacts that protect kept runs, by id, and why each is kept.
        candidates: how many runs were old enough (and of the experiment and states asked for),
            not counting the spared ones.
        spared_running: RUNNING runs old enough whose process may be alive, spared (ids).
    """

    cutoff_ms: int
    executions: List[ExecutionRecord] = field(default_factory=list)
    artifacts: List[ArtifactRecord] = field(default_factory=list)
    touched: List[int] = field(default_factory=list)
    kept_runs: Dict[int, int] = field(default_factory=dict)
    protected: Dict[int, Tuple[ArtifactRecord, str]] = field(default_factory=dict)
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
                states: Optional[Sequence[str]]) -> Dict[int, ExecutionRecord]:
    found: Dict[int, ExecutionRecord] = {}
    last = 0
    while True:
        page = store.backend.executions(Query(id_above=last, context_id=context_id, states=states, order="id",
                                              ascending=True, limit=5000))
        if not page:
            return found
        last = page[-1].id
        found.update({e.id: e for e in page if e.when_ms < cutoff_ms})


def _chunked(ids: Sequence[int]):
    ids = list(ids)
    for first in range(0, len(ids), _CHUNK):
        yield ids[first:first + _CHUNK]


def plan_prune(store: Store, cutoff_ms: int, *, context_id: Optional[int] = None,
               states: Optional[Sequence[str]] = None, keep: Sequence[int] = ()) -> PrunePlan:
    """What pruning the runs that started before `cutoff_ms` removes (see the module).

    Args:
        store: an open store (any backend: planning only reads).
        cutoff_ms: ms since the epoch; a run's start is its original time where imported.
        context_id: only runs of this context (experiment) are candidates.
        states: only runs in these states (ExecutionState names) are candidates.
        keep: artifact ids kept whatever their age, with their whole lineage.

    Raises:
        NotFoundError: an id of `keep` is no artifact of the store.
        MlmdExerciseError: an unknown state.
    """
    backend = store.backend
    for s in states or ():
        if s not in ExecutionState.__members__:
            raise MlmdExerciseError(f"unknown state '{s}': use {', '.join(ExecutionState.__members__)}")
    keep = sorted({int(i) for i in keep})
    if keep:
        known = {a.id for a in backend.artifacts(Query(ids=keep))}
        missing = [i for i in keep if i not in known]
        if missing:
            raise NotFoundError(f"no artifact with id {missing[0]} in {store} (--keep)")
    candidates = _candidates(store, cutoff_ms, context_id, states)
    start_times: Dict[int, Optional[int]] = {}
    spared = sorted(i for i, e in candidates.items()
                    if e.state == ExecutionState.RUNNING.value and not process.is_gone(e.properties, start_times))
    for i in spared:
        del candidates[i]
    plan = PrunePlan(cutoff_ms, candidates=len(candidates), spared_running=spared)
    events: List[EventRecord] = []
    for chunk in _chunked(sorted(candidates)):
        events += backend.events_by_executions(chunk)
    touched = sorted({e.artifact_id for e in events})
    artifacts: Dict[int, ArtifactRecord] = {}
    all_events: List[EventRecord] = []
    for chunk in _chunked(touched):
        artifacts.update({a.id: a for a in backend.artifacts(Query(ids=chunk))})
        all_events += backend.events_by_artifacts(chunk)
    by_run: Dict[int, Set[int]] = {}  # candidate -> the artifacts it touched
    runs_of: Dict[int, Set[int]] = {}  # touched artifact -> the candidates that touched it
    makers: Dict[int, Set[int]] = {}  # touched artifact -> the candidates that output it
    protected: Dict[int, Tuple[int, str]] = {}  # artifact -> (the kept artifact it protects, why that one)
    for e in all_events:
        if e.execution_id in candidates:
            by_run.setdefault(e.execution_id, set()).add(e.artifact_id)
            runs_of.setdefault(e.artifact_id, set()).add(e.execution_id)
            if e.type not in INPUT_EVENTS:
                makers.setdefault(e.artifact_id, set()).add(e.execution_id)
        elif e.artifact_id not in protected:
            protected[e.artifact_id] = (e.artifact_id, f"used or made by run {e.execution_id}, which stays")
    for a in artifacts.values():
        if a.id in keep:
            protected[a.id] = (a.id, "kept by --keep")
        elif a.when_ms >= cutoff_ms and a.id not in protected:
            protected[a.id] = (a.id, "newer than the cut-off")
    kept: Dict[int, int] = {}
    queue = list(protected)
    while True:
        while queue:  # everything upstream of a kept artifact stays, and all its runs touched
            artifact = queue.pop()
            root = protected[artifact][0]
            for run in sorted(makers.get(artifact, ())):
                if run not in kept:
                    kept[run] = root
                    for other in sorted(by_run.get(run, ())):
                        if other not in protected:
                            protected[other] = (root, protected[root][1])
                            queue.append(other)
        # A kept artifact read only by runs that go would be left with no event: keep one reader.
        for artifact in sorted(protected):
            readers = runs_of.get(artifact, set())
            stays = any(r in kept for r in readers) or protected[artifact][1].startswith("used or made")
            if readers and not stays:
                run = min(readers)
                kept[run] = protected[artifact][0]
                for other in sorted(by_run.get(run, ())):
                    if other not in protected:
                        protected[other] = protected[artifact]
                    queue.append(other)
        if not queue:
            break
    plan.executions = [candidates[i] for i in sorted(candidates) if i not in kept]
    plan.artifacts = [artifacts[i] for i in touched if i not in protected and i in artifacts]
    plan.touched = touched
    plan.kept_runs = kept
    plan.protected = {root: (artifacts[root], protected[root][1]) for root in set(kept.values())
                      if root in artifacts}
    return plan


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
