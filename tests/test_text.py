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


def test_an_imports_note_agrees_with_its_number():
    from mlmd_exercise.text import already_there

    assert already_there(0) == "" and already_there(0, "run") == ""
    assert already_there(1) == " (1 was already there)" and already_there(1, "run") == " (1 run was already there)"
    assert already_there(4, "run") == " (4 runs were already there)" and already_there(1200) == " (1,200 were already there)"
