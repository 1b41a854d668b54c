"""The command line: `mlmd-exercise` (main.py parses and turns errors into exit codes,
commands.py does each command, output.py formats records)."""
