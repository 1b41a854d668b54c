"""The command line: `mlmd-exercise`. main.py builds the parser from COMMANDS and turns
outcomes and errors into exit codes; command.py says what a command is; record.py, query.py,
audit.py and explore.py hold the commands, each one's options beside its body; output.py
formats records as text and JSON."""
