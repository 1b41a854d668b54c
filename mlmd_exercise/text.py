"""Text the command line and the explorer both show: counts, times, durations, aligned
columns, a value in a cell, what a diff comes to. Plain functions of plain values: nothing here
touches a store or prints (DESIGN.md, "The modules": the text-and-pictures layer)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from mlmd_exercise.read.diff import Change, Diff
    from mlmd_exercise.records import ArtifactRecord

__all__ = ["table", "aligned", "one_line", "count", "id_ranges", "when", "duration", "cell", "short_digest", "diff_verdict", "diff_rows",
           "change_label", "printable"]

CELL = 24  # longer text in a column is cut, with an ellipsis


_ONE_LINE = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def table(rows: Iterable[Sequence[str]], indent: str = "  ") -> List[str]:
    """Rows as aligned columns; the last column is not padded. A cell holding a line
    break or a tab (another program's name, say) shows it as `\\n`, one row a line."""
    if not isinstance(rows, list):
        rows = list(rows)
    if not rows:
        return []
    if len(rows) == 1:  # its own widths: as aligned makes it, without measuring (a walk's hop, 400,000 times);
        # the line's breaks and tabs shown as the cells' are, all at once (the gaps between cells hold none)
        line = indent + "  ".join(rows[0])
        if "\n" in line or "\r" in line or "\t" in line:  # three scans in C: quicker than translate's
            line = line.translate(_ONE_LINE)
        return [line.rstrip()]
    return list(aligned([[c.translate(_ONE_LINE) for c in r] for r in rows], indent))


def one_line(cells: Iterable[str]) -> Tuple[str, ...]:
    """A row's cells as `aligned` takes them: a line break or tab in one shows as `\\n`."""
    return tuple(c.translate(_ONE_LINE) for c in cells)


def aligned(rows: Sequence[Sequence[str]], indent: str = "  ") -> Iterator[str]:
    """`table`'s lines one at a time, for rows already made one-line (`one_line`): a listing
    of many rows is printed as it is aligned, never held twice."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        yield indent + "  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip()


def count(n: int, noun: str) -> str:
    """"1 artifact", "2 artifacts"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def already_there(n: int, noun: str = "") -> str:
    """" (1 was already there)", " (4 runs were already there)"; "" for none: an import's note."""
    if not n:
        return ""
    what = count(n, noun) if noun else f"{n:,}"
    return f" ({what} {'was' if n == 1 else 'were'} already there)"


def id_ranges(ids: Iterable[int], most: int = 6) -> str:
    """Ids as ranges, "1-3, 7, 9-12", with the rest counted after `most` ranges."""
    ranges: List[List[int]] = []
    for i in sorted(ids):
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    parts = [f"{a}-{b}" if a != b else str(a) for a, b in ranges]
    more = f" and {len(parts) - most:,} more ranges" if len(parts) > most else ""
    return ", ".join(parts[:most]) + more


# What a terminal would act on rather than show: C0 controls but tab and newline, DEL, C1
# controls (ESC sequences, OSC titles, BEL), and the bidirectional overrides and isolates that
# reorder a line (U+202E shows "evil.exe" as "exe.live").
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape (`\\x1b`,
    `\\u202e`): stored names print as what they are. JSON keeps such characters valid: a JSON
    string holds no raw C0 control, and `\\uXXXX` is JSON's own escape for the rest."""
    return _UNPRINTABLE.sub(_escaped, text)


def when(ms: Optional[float]) -> str:
    """A time in ms since the epoch, local, to the second; "-" for none. A time no calendar
    date holds (an import's 0001-01-01 in a zone west of UTC, 10**30) is shown as its number."""
    if not ms:
        return "-"
    try:
        return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{ms:.15g} ms since 1970 (not a date)"


def duration(ms: Optional[int]) -> str:
    """"137 ms", "2.5 s", "42 s", "3 min 5 s", "2 h 10 min"; "-" for none. (A run of a
    fraction of a second is not "0 s": most runs of a small model take that long.)"""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{max(0, ms)} ms"
    if ms < 9950:
        return f"{ms / 1000:.1f} s"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def cell(value: Any, width: int = CELL) -> str:
    """A value in a table: "-" for none, floats in 6 significant digits, long text cut."""
    if value is None:
        return "-"
    text = str(value)
    if isinstance(value, float) and len(text) > 10:  # 0.9580419580419581 as 0.958042
        text = format(value, ".6g")
    return text if len(text) <= width else text[:width - 1] + "…"


def short_digest(digest: Any) -> str:
    text = str(digest or "")
    return text[:len("sha256:") + 12] if text.startswith("sha256:") else (text or "no fingerprint")


def diff_verdict(d: Diff) -> List[str]:
    """What a diff comes to, in a line, where there is something to say: no differences, or
    the same inputs and params giving other outputs."""
    if d.nondeterministic:
        why = ("the code or environment differ (see below)" if d.code or d.environment or d.packages
               else "not deterministic (same code and environment too)")
        return [f"same inputs and params, different outputs: {why}"]
    if d.same:
        return [f"no differences: same params, metrics, code, environment, "
                f"{count(d.inputs_compared, 'input')} and {count(d.outputs_compared, 'output')}"]
    return []


def diff_rows(d: Diff) -> List[Tuple[str, str, str, str]]:
    """What differs, as rows of (section, what, A, B): values, then artifacts as one line each."""
    rows = [(title, change_label(c), cell(c.a, 10_000), cell(c.b, 10_000))
            for title, changes in (("params", d.params), ("metrics", d.metrics), ("code", d.code),
                                   ("environment", d.environment), ("packages", d.packages))
            for c in changes]

    def brief(x: Optional[ArtifactRecord]) -> str:
        if x is None:
            return "-"
        return f"artifact {x.id} {x.type_version} {short_digest(x.properties.get('fingerprint'))} {x.uri}"

    rows += [(title, c.path + (" (same content)" if c.same_content else ""), brief(c.a), brief(c.b))
             for title, changes in (("inputs", d.inputs), ("outputs", d.outputs)) for c in changes]
    return rows


def change_label(change: Change) -> str:
    return change.key if not change.step else f"{change.key} ({change.step}'s run)"
