"""The package's version (setup.cfg says the same), here so that the command line reads it
without importing the package's face (`mlmd_exercise/__init__.py`); and how a version is compared."""

import re
from typing import Tuple

__all__ = ["__version__", "major_minor", "MLMD_WITHOUT_FILTERS"]

__version__ = "0.1.0"

# ml-metadata 1.21 dropped its filter language ("filter_query is not supported - ZetaSQL
# dependency removed"): there the ml-metadata backend lists with plain calls and filters itself.
MLMD_WITHOUT_FILTERS = (1, 21)


def major_minor(version: str) -> Tuple[int, int]:
    """"1.17.1" as (1, 17)."""
    major, minor = (re.findall(r"\d+", version) + ["0", "0"])[:2]
    return int(major), int(minor)
