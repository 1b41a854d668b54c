"""The console examples of README.md and docs/*.md, run for real: checked by the tests, refreshed with --write.

Every ```console block of a page is a terminal session: a line starting with `$ ` is a
command (lines starting with `> ` continue it), the lines after it are what it prints
(stdout and stderr). A page's blocks run in order, in one new empty folder of its own, with
the virtualenv's `mlmd-exercise` on the PATH, so a later block sees what an earlier one
recorded; each page starts from an empty folder.

    python scripts/readme_examples.py               # every page: print the differences, exit 1 if any
    python scripts/readme_examples.py --write       # put what the commands print into the pages
    python scripts/readme_examples.py docs/cli.md   # one page

What varies from run to run is masked before comparing: the folder (shown as /home/me/proj),
times and dates, durations and rates, fingerprints, hosts and process ids.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def pages() -> List[Path]:
    """The pages whose examples run: the README and every page under docs/, found, not listed."""
    return [README] + sorted((ROOT / "docs").glob("*.md"))

SHOWN_FOLDER = "/home/me/proj"  # what the README shows for the folder the examples run in
_BLOCK = re.compile(r"```console\n(.*?)```", re.S)
_MASKS = [  # (pattern, replacement), applied in order to both sides
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?"), "<time>"),
    (re.compile(r"sha256:[0-9a-f]{4,64}"), "sha256:<hex>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),
    (re.compile(r"[\d,]+ runs/s"), "<n> runs/s"),
    (re.compile(r"http://127\.0\.0\.1:\d+/[\w-]+/runs"), "http://127.0.0.1:<port>/<token>/runs"),
    # What `show` says a run was recorded with: this machine, this Python, these packages.
    (re.compile(r"^(\s+(?:user|host|pid|pid_start|python|command|packages)\s+)\S.*$"), r"\1<value>"),
]
# The further lines of a run's package list (name==version), which differ between machines.
_PACKAGE_LINE = re.compile(r"^\s+[A-Za-z0-9_.-]+==\S+$")


@dataclass
class Command:
    text: str  # the command, continuation lines joined with newlines
    output: List[str]  # the lines the README shows it printing


def parse(readme: str) -> List[Tuple[Tuple[int, int], List[Command]]]:
    """Each console block's span in the README and its commands."""
    blocks = []
    for match in _BLOCK.finditer(readme):
        commands: List[Command] = []
        for line in match.group(1).splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:], []))
            elif line.startswith("> ") and commands and not commands[-1].output:
                commands[-1].text += "\n" + line[2:]
            elif commands:
                commands[-1].output.append(line)
            elif line.strip():
                raise ValueError(f"console block starts with output, not a command: {line!r}")
        blocks.append((match.span(1), commands))
    return blocks


def _command_line(text: str) -> str:
    """The command without a trailing `# comment` (comments explain, they do not run)."""
    return re.sub(r"\s+#\s[^'\"\n]*$", "", text)


def run(commands: List[Command], folder: Path) -> List[List[str]]:
    """Runs the commands in `folder`; returns what each printed, the folder shown as SHOWN_FOLDER."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": "100"}
    env.pop("MLMD_STORE", None)
    printed = []
    real = str(folder.resolve())
    venv = str(Path(sys.executable).parent.parent)
    for command in commands:
        proc = subprocess.run(["bash", "-c", _command_line(command.text)], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        text = proc.stdout.replace(venv, SHOWN_FOLDER + "/.venv").replace(real, SHOWN_FOLDER)
        printed.append([line.rstrip() for line in text.splitlines()])
    return printed


def masked(lines: List[str]) -> List[str]:
    out = []
    for line in lines:
        if _PACKAGE_LINE.match(line):
            continue
        for pattern, replacement in _MASKS:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


def run_all(readme: str, folder: Path):
    """Every block's commands with what they printed, in README order."""
    blocks = parse(readme)
    results = []
    for span, commands in blocks:
        results.append((span, commands, run(commands, folder)))
    return results


def differences(results) -> List[str]:
    found = []
    for _, commands, printed in results:
        for command, lines in zip(commands, printed):
            if masked(command.output) != masked(lines):
                found.append(f"$ {command.text}\n--- README shows:\n" + "\n".join(command.output)
                             + "\n--- it prints:\n" + "\n".join(lines))
    return found


def rewrite(readme: str, results) -> str:
    """The README with each command's shown output replaced by what it printed."""
    pieces, last = [], 0
    for (start, end), commands, printed in results:
        pieces.append(readme[last:start])
        body = []
        for command, lines in zip(commands, printed):
            first, *rest = command.text.split("\n")
            body += ["$ " + first] + ["> " + r for r in rest] + lines
        pieces.append("\n".join(body) + "\n")
        last = end
    pieces.append(readme[last:])
    return "".join(pieces)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="the pages to run (default: README.md and docs/*.md)")
    parser.add_argument("--write", action="store_true", help="put what the commands print into the pages")
    args = parser.parse_args()
    found = []
    for page in args.pages or pages():
        text = page.read_text()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "proj"
            folder.mkdir()
            results = run_all(text, folder)
        if args.write:
            page.write_text(rewrite(text, results))
            print(f"wrote the output of {sum(len(c) for _, c, _ in results)} commands into {page}")
        else:
            found += [f"{page}:\n{difference}" for difference in differences(results)]
    if not args.write:
        print("\n\n".join(found) if found else "every console example prints what its page shows")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
