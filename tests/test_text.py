"""text.py: how times and counts read, the same in the CLI, the explorer and the report."""

from __future__ import annotations

import pytest

from mlmd_exercise.text import duration


@pytest.mark.parametrize("ms, said", [
    (None, "-"), (-5, "0 ms"), (0, "0 ms"), (137, "137 ms"), (999, "999 ms"), (1000, "1.0 s"), (2549, "2.5 s"),
    (9949, "9.9 s"), (9950, "10 s"), (42_400, "42 s"), (185_000, "3 min 5 s"), (7_800_000, "2 h 10 min"),
])
def test_a_duration_reads_in_the_unit_it_needs(ms, said):
    # A run of a fraction of a second, which most small models take, is not "0 s".
    assert duration(ms) == said
