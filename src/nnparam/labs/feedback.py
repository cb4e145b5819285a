"""The feedback vocabulary shared by every lab's checks."""

from __future__ import annotations

import numpy as np


class LabCheckError(AssertionError):
    """Raised by a lab check: the message says what is wrong and how to look for the cause."""


def passed(message: str) -> bool:
    """Print a success line for the student and return True."""
    print(f"[ok] {message}")
    return True


def require(condition: bool, message: str) -> None:
    """Raise :class:`LabCheckError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LabCheckError(message)


def as_array(name: str, value, shape: tuple | None = None) -> np.ndarray:
    """The student's answer as a float array, with a readable error for the wrong type or shape."""
    if value is None:
        raise LabCheckError(f"`{name}` is None: did your function forget to `return` it?")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise LabCheckError(f"`{name}` should be an array of numbers, got "
                            f"{type(value).__name__}") from err
    if shape is not None and arr.shape != tuple(shape):
        raise LabCheckError(f"`{name}` should have shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LabCheckError(f"`{name}` contains NaN or inf")
    return arr
