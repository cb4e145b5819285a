"""Tiny notebooks built in tests: ``make_notebook(("markdown", "# Lab"), ("code", "x = 1",
["hide-input"]), ...)`` gives an nbformat-4 dict with the cells and their tags."""

KERNEL = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}


def make_notebook(*cells, kernel: bool = True) -> dict:
    """Cells as ``(cell_type, source[, tags])``; code cells get empty outputs."""
    out = []
    for kind, src, *tags in cells:
        cell = {"cell_type": kind, "metadata": {"tags": tags[0]} if tags else {},
                "source": src}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return {"cells": out, "metadata": dict(KERNEL) if kernel else {}, "nbformat": 4,
            "nbformat_minor": 5}
