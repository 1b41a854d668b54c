"""The command line: `mlmd-exercise`. main.py builds the parser from COMMANDS and turns
outcomes and errors into exit codes; command.py says what a command is; record.py, query.py,
audit.py and explore.py hold the commands, each one's options beside its body; output.py
and side_by_side.py format records and runs as text and JSON."""
