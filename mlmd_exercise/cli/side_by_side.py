"""How the CLI shows runs side by side: `ls executions` with params and metrics as columns,
`diff` of two runs or artifacts, `stale`; as text lines and as JSON-ready dicts.

Nothing here prints; the commands do. The explorer (web/pages.py) shows a diff with the
same rows and verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from mlmd_exercise.cli.output import artifact_cells, record_json
from mlmd_exercise.text import (aligned, cell, change_label, count, diff_rows, diff_verdict, duration, one_line,
                                short_digest, table, when)
from mlmd_exercise.records import ArtifactRecord, ExecutionRecord

if TYPE_CHECKING:  # the read modules open stores: only the commands that show these import them
    from mlmd_exercise.read.compare import RunSummary
    from mlmd_exercise.read.diff import ArtifactChange, Change, Diff
    from mlmd_exercise.read.stale import StaleReport

__all__ = ["MAX_AUTO_COLUMNS", "format_runs", "runs_header", "run_row", "hidden_note", "format_diff", "format_stale", "diff_json", "stale_json"]

MAX_AUTO_COLUMNS = 8  # `ls executions` shows at most this many params and metrics unasked
_WIDE = 32  # diff shows longer values a line a side, in full


def format_runs(runs: Sequence[RunSummary], columns: Sequence[str], hidden: Sequence[str] = ()) -> List[str]:
    """`ls executions`: one row a run, its params and metrics as columns."""
    if not runs:
        return []
    named = any(r.execution.label for r in runs)  # a NAME column where some run has a name of its own
    rows = [runs_header(columns, named)] + [run_row(r, columns, named) for r in runs]
    return list(aligned(rows, indent="")) + hidden_note(hidden)


def runs_header(columns: Sequence[str], named: bool) -> Tuple[str, ...]:
    """The header of `ls executions`; `named`: with a NAME column (some run has a name of its own)."""
    return one_line(("ID", *(("NAME",) if named else ()), "TYPE", "STATE", "CREATED", *columns))


def run_row(r: RunSummary, columns: Sequence[str], named: bool) -> Tuple[str, ...]:
    """One run's row of `ls executions`, under `runs_header`."""
    return one_line((str(r.execution.id), *((cell(r.execution.label or "-"),) if named else ()), r.execution.type,
                     r.execution.state, when(r.execution.when_ms), *(cell(r.value(c)) for c in columns)))


def hidden_note(hidden: Sequence[str]) -> List[str]:
    return ([f"({count(len(hidden), 'more column')}: {', '.join(hidden)}; choose with --columns)"]
            if hidden else [])


def _artifact_lines(a: Optional[ArtifactRecord], b: Optional[ArtifactRecord]) -> List[str]:
    """An artifact on each side, one aligned line each."""
    def cells(side: str, x: Optional[ArtifactRecord]) -> Sequence[str]:
        if x is None:
            return (side, "-", "", "", "")
        return (side, f"artifact {x.id}", x.type_version, short_digest(x.properties.get("fingerprint")),
                x.uri)

    return table([cells("A", a), cells("B", b)], indent="    ")


def format_diff(d: Diff) -> List[str]:
    """`diff`: A and B, the one-line verdict, the values that differ side by side, then
    the artifacts that differ, one line a side."""
    def what(x: Union[ExecutionRecord, ArtifactRecord], run: Optional[int]) -> str:
        if isinstance(x, ExecutionRecord):  # d.kind == "execution"
            took = f", took {duration(x.ended_ms - x.when_ms)}" if x.ended_ms is not None else ""
            return f"execution {x.id} ({x.type}, {x.state}), started {when(x.when_ms)}{took}"
        made = f", made by execution {run}" if run else ", made by no recorded run"
        return f"artifact {x.id} ({x.type_version}) of {when(x.when_ms)}{made}"

    lines = [f"A  {what(d.a, d.runs[0])}", f"B  {what(d.b, d.runs[1])}"] + diff_verdict(d)
    if d.same:
        return lines
    # Values side by side in one table; a long one (a command, a path) on a line of its own.
    rows: List[Sequence[str]] = [("", "A", "B")]
    for title, changes in (("params", d.params), ("metrics", d.metrics), ("code", d.code),
                           ("environment", d.environment), ("packages", d.packages)):
        rows.append((title, "" if changes else "same", ""))
        for c in changes:
            a, b = cell(c.a, 10_000), cell(c.b, 10_000)
            if max(len(a), len(b)) <= _WIDE:
                rows.append((f"  {change_label(c)}", a, b))
            else:
                rows += [(f"  {change_label(c)}", "", ""), ("\n", f"    A  {a}", f"    B  {b}")]
    short = [r for r in rows if r[0] != "\n"]
    widths = [max(len(r[i]) for r in short) for i in range(2)]
    for row in rows:
        if row[0] == "\n":
            lines += list(row[1:])
        else:
            lines.append(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())
    for title, differing, compared in (("inputs, all the way back", d.inputs, d.inputs_compared),
                                       ("outputs" if d.kind == "execution" else "the artifacts",
                                        d.outputs, d.outputs_compared)):
        if not differing:
            lines.append(f"{title}: " + (f"same ({compared})" if compared else "none"))
            continue
        lines.append(f"{title}: {len(differing)} of {compared} differ")
        for change in differing:
            if change.path:
                lines.append(f"  {change.path}" + (" (same content)" if change.same_content else ""))
            lines += _artifact_lines(change.a, change.b)
    return lines


def format_stale(report: StaleReport) -> List[str]:
    """`stale`: each changed or vanished file, what was made from it, and a count."""
    lines: List[str] = []
    for changed in report.changed:
        a = changed.problem.artifact
        lines.append(f"{changed.problem.kind}  artifact {a.id} ({a.type_version})  {a.uri}")
        if not changed.downstream:
            lines.append("  nothing was made from it")
            continue
        lines.append("  made from it:")
        lines += table([artifact_cells(x) for x in changed.downstream], indent="    ")
        lines.append("  by: " + ", ".join(f"execution {e.id} ({e.type})" for e in changed.runs))
    files = count(len(report.changed), "changed or missing file")
    if report.stale:
        lines.append(f"{count(len(report.stale), 'stale artifact')} made from {files}: make them again")
    else:
        lines.append(f"no stale artifacts: {files} among {count(report.checked, 'checked file')}")
    return lines


def diff_json(d: Diff) -> Dict[str, Any]:
    def changes(items: Iterable[Change]) -> List[Dict[str, Any]]:
        return [{"step": c.step, "key": c.key, "a": c.a, "b": c.b} for c in items]

    def artifacts(items: Iterable[ArtifactChange]) -> List[Dict[str, Any]]:
        return [{"path": c.path, "same_content": c.same_content,
                 "a": record_json(c.a) if c.a is not None else None,
                 "b": record_json(c.b) if c.b is not None else None} for c in items]

    return {
        "kind": d.kind, "a": record_json(d.a), "b": record_json(d.b), "runs": list(d.runs),
        "params": changes(d.params), "metrics": changes(d.metrics), "code": changes(d.code),
        "environment": changes(d.environment), "packages": changes(d.packages),
        "inputs": artifacts(d.inputs), "inputs_compared": d.inputs_compared,
        "outputs": artifacts(d.outputs), "outputs_compared": d.outputs_compared,
        "same": {"inputs": d.same_inputs, "params": d.same_params, "outputs": d.same_outputs,
                 "code": not d.code, "environment": not (d.environment or d.packages)},
        "nondeterministic": d.nondeterministic,
    }


def stale_json(report: StaleReport) -> Dict[str, Any]:
    return {
        "checked": report.checked,
        "changed": [{"problem": c.problem.kind, "artifact": record_json(c.problem.artifact),
                     "downstream": [record_json(a) for a in c.downstream],
                     "runs": [record_json(e) for e in c.runs]} for c in report.changed],
        "stale": [record_json(a) for a in report.stale],
    }
