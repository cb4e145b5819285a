"""Mutation runs: execute a notebook with a few source substitutions and report what broke.

The book's promise is that a wrong number stops the build. A mutation test is the evidence:
perturb a stated parameter (or swap in a deliberately wrong closure) and check that the
chapter's own assertions then fail, with the message of the claim that no longer holds.

    from mutation import run_mutated
    failure = run_mutated("book/principles/stability.ipynb", {"h = 9000.0": "h = 900.0"})
    assert failure is not None and "blow up" in failure.message
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Failure:
    """The first cell that raised: its index, the exception name and the message."""

    cell: int
    ename: str
    message: str


def mutate(nb, replacements: dict[str, str]):
    """A copy of ``nb`` with every ``old`` replaced by ``new`` in the code cells.

    Each ``old`` must occur in at least one code cell, so a mutation that no longer matches
    the chapter fails loudly instead of testing nothing.
    """
    nb = copy.deepcopy(nb)
    for old, new in replacements.items():
        hits = 0
        for cell in nb.cells:
            if cell.cell_type == "code" and old in cell.source:
                cell.source = cell.source.replace(old, new)
                hits += 1
        if not hits:
            raise ValueError(f"mutation target {old!r} is not in any code cell")
    return nb


def run_mutated(notebook, replacements: dict[str, str] | None = None,
                timeout: float = 180.0) -> Failure | None:
    """Execute ``notebook`` (a path, relative to the repository root or absolute) with the
    ``replacements`` applied; return ``None`` if every cell ran, else the first
    :class:`Failure`. Cells tagged ``raises-exception`` are executed like any other."""
    path = Path(notebook)
    path = path if path.is_absolute() else ROOT / path
    nb = mutate(nbformat.read(path, as_version=4), replacements or {})
    for cell in nb.cells:  # a mutation must be able to fail cells that are allowed to raise
        tags = cell.get("metadata", {}).get("tags", [])
        if "raises-exception" in tags:
            cell["metadata"]["tags"] = [t for t in tags if t != "raises-exception"]
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellTimeoutError as err:
        return Failure(-1, "CellTimeoutError", str(err))
    except CellExecutionError as err:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                     -1)
        return Failure(index, err.ename, err.evalue)
    return None


def assert_mutation_fails(notebook, replacements: dict[str, str], message: str,
                          timeout: float = 300.0) -> Failure:
    """Run the mutated notebook and assert that one of its own assertions fails with a
    message containing ``message`` (the claim the mutation breaks); return the failure."""
    failure = run_mutated(notebook, replacements, timeout=timeout)
    assert failure is not None, f"{notebook}: the mutated notebook still passes"
    assert failure.ename == "AssertionError", failure
    assert message in failure.message, failure
    return failure
