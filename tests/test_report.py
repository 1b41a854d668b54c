"""`mlmd-exercise report`: one self-contained file, HTML or Markdown with Mermaid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mlmd_exercise as mx
from mlmd_exercise import workflow
from mlmd_exercise.web import report

from conftest import digest, write


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("report-demo")
    store = mx.open_store(workdir / "metadata.db", create=True)
    workflow.run_demo(store, workdir)
    workflow.run_demo(store, workdir, dataset="iris", experiment="iris")
    return workdir / "metadata.db"


def test_an_html_report_refers_to_nothing_outside_it(run_cli, demo, tmp_path):
    before = digest(demo)
    out = tmp_path / "report.html"
    result = run_cli("report", "--db", demo, "-o", out)
    assert result.code == 0, result.err
    assert result.out.strip() == f"report of 3 runs and a lineage of 6 artifacts and 3 executions: {out}"
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and 'class="node"' in text
    assert "<script" not in text and "<link" not in text and " src=" not in text
    # Every address in the file is an XML namespace, not something to fetch.
    assert set(re.findall(r'https?://[^"\s)]+', text)) <= {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://purl.org/dc/elements/1.1/",
        "http://creativecommons.org/ns#", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    assert "url(" not in text.replace("url(#", "")  # no fonts or images from elsewhere
    for column in ("C", "max_iter", "train_accuracy", "accuracy", "Executions by state"):
        assert column in text
    assert digest(demo) == before


def test_a_report_of_one_node_and_one_experiment(run_cli, demo, tmp_path):
    out = tmp_path / "iris.html"
    result = run_cli("report", "--db", demo, "-o", out, "--artifact", "5", "--experiment", "iris")
    assert result.code == 0, result.err
    text = out.read_text()
    assert "Lineage of artifact 5 (both, all hops)" in text and "experiment iris" in text
    assert text.count('name="execution"') == 0  # no compare boxes in a file


def test_a_report_of_one_node_names_it_and_lists_only_its_lineages_runs(run_cli, demo, tmp_path):
    out = tmp_path / "one.md"
    assert run_cli("report", "--db", demo, "-o", out, "--artifact", "2").code == 0
    text = out.read_text()
    assert text.startswith("# Lineage report: artifact 2 \\(SavedModel\\)\n"), text[:80]
    assert "the whole store" not in text and "## The lineage's runs, newest first" in text
    runs_table = text.split("## The lineage's runs", 1)[1].split("##", 1)[0]
    assert [line.split("|")[1].strip() for line in runs_table.splitlines() if line.startswith("| \\#")] == ["\\#1"]
    assert "| COMPLETE | 1 |" in text  # the counts are the lineage's, not the store's 3


def test_a_markdown_report_draws_a_mermaid_flowchart(run_cli, demo, tmp_path):
    out = tmp_path / "report.md"
    assert run_cli("report", "--db", demo, "-o", out, "--artifact", "4", "--direction", "upstream").code == 0
    text = out.read_text()
    [chart] = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert chart.startswith("flowchart LR\n")
    assert '-->|"examples"| e' in chart and "classDef state_COMPLETE fill:#a1d99b" in chart
    assert "| run | type | state |" in text and "| COMPLETE | 1 |" in text  # the lineage's one run


@pytest.mark.parametrize("label, shown", [
    ('say "hi"', "say #quot;hi#quot;"),
    ("<script>alert(1)</script>", "#lt;script#gt;alert#40;1#41;#lt;/script#gt;"),
    ("a|b [c] {d} `e` #f & g", "a#124;b #91;c#93; #123;d#125; #96;e#96; #35;f #amp; g"),
    ("two\nlines", "two lines"),
])
def test_mermaid_labels_hold_no_syntax(label, shown):
    assert report.mermaid_text(label) == shown


def test_markdown_cells_hold_no_markup():
    assert report.md_text("<img src=x onerror=alert(1)> | *b* [l](u)") == (
        "&lt;img src=x onerror=alert\\(1\\)&gt; \\| \\*b\\* \\[l\\]\\(u\\)")


def test_stored_markup_stays_text_in_both_formats(run_cli, tmp_path):
    tracker = mx.Tracker(tmp_path / "x.db", experiment="<b>exp</b>")
    data = tracker.dataset(write(tmp_path / "d.csv", "a\n1\n"), split="<script>alert(1)</script>")
    with tracker.execution("Trainer", inputs={'"]); click a1 call alert(1)': data},
                           params={"p": "<img src=x onerror=alert(2)>"}) as run:
        run.log_model(write(tmp_path / "m.bin", "m"), name="```\n# heading")
    assert run_cli("report", "--db", tmp_path / "x.db", "-o", tmp_path / "x.html").code == 0
    text = (tmp_path / "x.html").read_text()
    assert "<img" not in text and "&lt;img src=x onerror=alert(2)&gt;" in text
    assert run_cli("report", "--db", tmp_path / "x.db", "-o", tmp_path / "x.md").code == 0
    md = (tmp_path / "x.md").read_text()
    [chart] = re.findall(r"```mermaid\n(.*?)```", md, re.S)
    assert "<img" not in md and "click" not in chart.replace("#quot;#93;#41;; click", "")
    assert md.count("```") == 2  # a stored fence does not end the chart


@pytest.mark.parametrize("args, message", [
    (["-o", "/no/such/dir/r.html"], "cannot write '/no/such/dir/r.html': folder '/no/such/dir' does not exist"),
    (["-o", "{tmp}"], "output path '{tmp}' is a folder: give a file name"),
    (["-o", "{tmp}/r.pdf"], "unknown output format '.pdf' of '{tmp}/r.pdf': use one of .html, .htm, .md"),
    (["-o", "{tmp}/r.html", "--format", "md"], "output path '{tmp}/r.html' names HTML but --format is md: use a .md file"),
    (["-o", "{tmp}/r.html", "--artifact", "99"], "no artifact with id 99 in {db}"),
    (["-o", "{tmp}/r.html", "--experiment", "nope"], "no experiment named 'nope' in {db}"),
    (["-o", "{tmp}/r.html", "--artifact", "1", "--execution", "1"], "give --artifact or --execution, not both"),
])
def test_bad_report_input_is_one_line_and_exit_2(run_cli, demo, tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    result = run_cli("report", "--db", demo, *args)
    assert result.code == 2
    assert result.err.strip().splitlines() == [f"mlmd-exercise: error: {message.format(tmp=tmp_path, db=demo)}"]
    assert not (tmp_path / "r.html").exists()
