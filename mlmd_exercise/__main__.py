"""`python -m mlmd_exercise`: the same as the `mlmd-exercise` command."""

import sys

from mlmd_exercise.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
