"""The course's checks, adapters, planted bugs and adversarial suite (instructor side only: never shipped to students).

Each assignment `NN_name` has its checks in `checks/name.py` and its adapters in `adapters/name.py`; the planted
bugs are in `mutants/NN_name.toml`. What the grading box may show of this package is the allow-list in `sandbox.py`:
the adapters and the modules they import, never the checks, planted bugs or adversarial suite.
"""
from __future__ import annotations

import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def short_name(assignment: str) -> str:
    """Checks and adapters are named after the assignment without its number.

    >>> short_name("01_setup")
    'setup'
    """
    return assignment.split("_", 1)[1]


def adapters_module(assignment: str) -> str:
    return f"{__name__}.adapters.{short_name(assignment)}"


def adapters_for(assignment: str):
    """The adapters module of an assignment: what `Implementation.call` names."""
    return importlib.import_module(adapters_module(assignment))
