"""The package's version (setup.cfg says the same), here so that the command line reads it
without importing the package's face (`mlmd_exercise/__init__.py`)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
