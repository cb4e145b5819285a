"""The feedback vocabulary shared by every lab's checks.

A check receives the student's work (a function, a trained object, a run, the inputs it was
made from), tests it on inputs it makes itself, and either prints one ``[ok]`` line or raises
:class:`LabCheckError` with a message that names the most likely mistake. The helpers below do
the repetitive part, each with a message a student can act on:

* :func:`call` runs the student's function and turns any exception into a ``LabCheckError``
  that says which call failed, on which line of the student's code, and why it usually happens;
* :func:`as_array`, :func:`as_ndarray`, :func:`as_tensor`, :func:`as_scalar`,
  :func:`as_indices`, :func:`as_mapping` validate the type and shape of what a check is given;
* :func:`expect_times` verifies the time axis of a run (start, end, step, count);
* :func:`forbid` makes calls to an engine shortcut fail while the student's code runs;
* :func:`lab_check` (a decorator) guarantees that nothing but a ``LabCheckError`` leaves a check;
* :func:`passed` prints the success line.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import traceback
import types
from collections.abc import Callable, Iterator, Mapping

import numpy as np


class LabCheckError(AssertionError):
    """Raised by a lab check: the message says what is wrong and how to look for the cause.

    In Jupyter the error shows as its one-line message, without the check's own source lines
    (IPython uses ``_render_traceback_`` when an exception defines it).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mLabCheckError\x1b[0m: {self}"]


class ForbiddenCall(LabCheckError):
    """Raised inside the student's code when it calls a function a :func:`forbid` block bans."""


class Passed(int):
    """What :func:`passed` returns: true (equal to ``True``), silent as a cell's last value.

    A check cell usually ends with the check call; returning a plain ``True`` would echo
    ``True`` under the ``[ok]`` line. IPython shows nothing for an object whose
    ``_ipython_display_`` displays nothing.
    """

    message: str

    def __new__(cls, message: str = ""):
        obj = super().__new__(cls, 1)
        obj.message = message
        return obj

    def __repr__(self) -> str:
        return "True"

    def _ipython_display_(self) -> None:  # nothing under the [ok] line
        return None


def passed(message: str) -> Passed:
    """Print a success line for the student and return a true value (``== True``)."""
    print(f"[ok] {message}")
    return Passed(message)


def require(condition: bool, message: str) -> None:
    """Raise :class:`LabCheckError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LabCheckError(message)


def lab_check(func: Callable) -> Callable:
    """Decorate a check so that only a ``LabCheckError`` (or a stub's NotImplementedError)
    can leave it: an unexpected error inside the check becomes a message, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (LabCheckError, NotImplementedError, KeyboardInterrupt):
            raise
        except Exception as err:  # a value the check did not foresee: still a message
            raise LabCheckError(
                f"{func.__name__}: the check could not read what you passed "
                f"({type(err).__name__}: {err}). Pass exactly the objects named in the check "
                f"cell, of the types the exercise asks for.") from None
    return wrapper


# ---------------------------------------------------------------------------------------
# describing values and the student's failures


def describe(value) -> str:
    """A short description of a value for messages: type, and shape for arrays."""
    shape = getattr(value, "shape", None)
    name = type(value).__name__
    if isinstance(value, list | tuple):
        return f"a {name} of {len(value)} items"
    if shape is not None:
        return f"a {name} of shape {tuple(shape)}"
    return f"a {name}" if value is not None else "None"


def _student_frame(tb) -> traceback.FrameSummary | None:
    """The deepest frame of the traceback that belongs to the student's code (a notebook cell
    or a file outside the installed packages), or None."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        name = frame.filename.replace("\\", "/")
        if ("site-packages" in name or "/nnparam/" in name or name.startswith("<frozen")
                or "/lib/python" in name):
            continue
        return frame
    return None


#: likely causes of common errors, recognised by a fragment of the error message
_HINTS = (
    ("Can't call numpy() on Tensor that requires grad",
     "a numpy function (np.roll, np.diff, np.asarray, ...) was applied to a torch tensor that "
     "carries gradients: numpy cannot follow them. Use the torch function instead "
     "(torch.roll, torch.diff, ...), so that gradients reach the network"),
    ("must be Tensor, not numpy.ndarray",
     "a bare torch network was given numpy arrays: wrap it as a closure that builds its "
     "inputs and scalings (for Lorenz-96, l96.neural_closure(net, width, sx, sy))"),
    ("unsupported operand type(s)",
     "numpy arrays and torch tensors were mixed in one expression: keep to one kind (torch "
     "functions on tensors)"),
    ("division by zero", "a division by zero: handle the special case before dividing"),
    ("not enough values to unpack", "the function returns fewer values than the code unpacks"),
    ("too many values to unpack", "the function returns more values than the code unpacks"),
    ("tuple index out of range", "an array has fewer dimensions than the code assumes"),
    ("matmul: Input operand", "the matrix shapes do not fit: W has shape (rows, columns), "
                              "so W @ v needs len(v) == W.shape[1]"),
    ("shapes", "the array shapes do not fit together"),
    ("could not broadcast", "the array shapes do not fit together"),
    ("list indices must be integers", "a list was used where an array is needed "
                                      "(np.asarray makes one)"),
    ("'list' object has no attribute", "a list was used where an array is needed"),
    ("object is not callable", "a value was used where a function is needed"),
)


def _hint(err: BaseException) -> str | None:
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, ZeroDivisionError):
        return "a division by zero: handle the special case before dividing"
    for fragment, hint in _HINTS:
        if fragment in text:
            return hint
    return None


def call(name: str, func, *args, inputs: str | None = None, hint: str | None = None,
         **kwargs):
    """``func(*args, **kwargs)``, with every failure turned into a :class:`LabCheckError`.

    ``name`` is how the student knows the function (``"coarse_grain"``); ``inputs`` describes
    the arguments the check made (``"a field of shape (3, 24) and factor 4"``); ``hint`` is
    added to the message when the call fails. A ``None`` result is reported as a forgotten
    ``return``. The message of a failure names the line of the student's code that raised.
    """
    if not callable(func):
        raise LabCheckError(f"`{name}` should be your function itself (no parentheses after "
                            f"its name), got {describe(func)}")
    where = f" for {inputs}" if inputs else ""
    try:
        out = func(*args, **kwargs)
    except LabCheckError:
        raise
    except NotImplementedError as err:
        raise LabCheckError(f"`{name}` is not written yet ({err}): replace the "
                            f"`raise NotImplementedError` line with your code") from None
    except Exception as err:  # the student's code failed: say where and why
        frame = _student_frame(err.__traceback__)
        line = f" at `{frame.line.strip()}`" if frame is not None and frame.line else ""
        cause = hint or _hint(err)
        raise LabCheckError(f"`{name}` raised {type(err).__name__}{where}{line}: {err}"
                            + (f". Likely cause: {cause}" if cause else "")) from None
    if out is None:
        raise LabCheckError(f"`{name}` returned None{where}: did your function forget to "
                            f"`return` its result?")
    return out


def require_callable(name: str, value) -> Callable:
    """``value`` if it is callable, else a message that names the usual slip."""
    if value is None:
        raise LabCheckError(f"`{name}` is None: define it (the exercise cell) before the check")
    if not callable(value):
        raise LabCheckError(f"`{name}` should be a function (pass it without parentheses), got "
                            f"{describe(value)}")
    return value


# ---------------------------------------------------------------------------------------
# validating what the student hands in


def as_array(name: str, value, shape: tuple | None = None) -> np.ndarray:
    """The student's answer as a float array, with a readable error for the wrong type or shape."""
    if value is None:
        raise LabCheckError(f"`{name}` is None: did your function forget to `return` it?")
    if isinstance(value, tuple) and value and isinstance(value[0], np.ndarray):
        if len(value) > 1 and np.ndim(value[0]) != np.ndim(value[1]):
            raise LabCheckError(f"`{name}` is a tuple of arrays (for example the whole output "
                                f"of np.linalg.lstsq): take the array you need from it")
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise LabCheckError(f"`{name}` should be an array of numbers, got "
                            f"{describe(value)}") from err
    if shape is not None and arr.shape != tuple(shape):
        raise LabCheckError(f"`{name}` should have shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LabCheckError(f"`{name}` contains NaN or inf")
    return arr


def as_ndarray(name: str, value, shape: tuple | None = None, ndim: int | None = None,
               finite: bool = True) -> np.ndarray:
    """``value`` if it is a numpy array of numbers (not a list, tensor or DataArray)."""
    if value is None:
        raise LabCheckError(f"`{name}` is None: did your function forget to `return` it?")
    if not isinstance(value, np.ndarray):
        hint = {"list": " (np.asarray makes one; the cells after this one do array "
                        "arithmetic with it)",
                "tuple": " (a tuple: did you return several values, or the whole output of "
                         "a numpy function?)",
                "Tensor": " (call .detach().numpy() on it, or compute it with numpy)",
                "DataArray": " (take .values)"}.get(type(value).__name__, "")
        raise LabCheckError(f"`{name}` should be a numpy array, got {describe(value)}{hint}")
    if value.dtype.kind not in "biuf":
        raise LabCheckError(f"`{name}` should hold numbers, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise LabCheckError(f"`{name}` should have {ndim} dimension(s), got shape {value.shape}")
    if shape is not None and value.shape != tuple(shape):
        raise LabCheckError(f"`{name}` should have shape {tuple(shape)}, got {value.shape}")
    if finite and not np.all(np.isfinite(value)):
        raise LabCheckError(f"`{name}` contains NaN or inf")
    return value


def as_tensor(name: str, value, shape: tuple | None = None, dtype=None,
              finite: bool = True):
    """``value`` if it is a torch tensor (of ``shape`` and ``dtype`` when given)."""
    import torch

    if value is None:
        raise LabCheckError(f"`{name}` is None: did your function forget to `return` it?")
    if not isinstance(value, torch.Tensor):
        raise LabCheckError(f"`{name}` should be a torch tensor, got {describe(value)}: use "
                            f"torch operations (torch.roll, not np.roll), so that gradients "
                            f"reach the network")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise LabCheckError(f"`{name}` should have shape {tuple(shape)}, got "
                            f"{tuple(value.shape)}")
    if dtype is not None and value.dtype != dtype:
        raise LabCheckError(f"`{name}` should keep the input's dtype {dtype}, got {value.dtype}")
    if finite and not bool(torch.isfinite(value.detach()).all()):
        raise LabCheckError(f"`{name}` contains NaN or inf")
    return value


def as_scalar(name: str, value) -> float:
    """``value`` as one finite real number (Python or numpy number, 0-d array or tensor)."""
    if value is None:
        raise LabCheckError(f"`{name}` is None: did your function forget to `return` it?")
    if isinstance(value, bool | np.bool_):
        raise LabCheckError(f"`{name}` should be a number, got the boolean {value}")
    if isinstance(value, str):
        raise LabCheckError(f"`{name}` should be a number, got the string {value!r}")
    if isinstance(value, list | tuple | dict):
        raise LabCheckError(f"`{name}` should be one number, got {describe(value)}")
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    values = getattr(value, "values", None)  # a 0-d DataArray
    if values is not None and not callable(values) and not isinstance(value, np.ndarray):
        value = values
    if callable(value):
        raise LabCheckError(f"`{name}` should be a number, got a function: call it")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise LabCheckError(f"`{name}` should be a number, got {describe(value)}") from None
    if arr.ndim != 0:
        raise LabCheckError(f"`{name}` should be one number, got an array of shape {arr.shape}")
    if not np.isfinite(arr):
        raise LabCheckError(f"`{name}` is {float(arr)}: it should be a finite number")
    return float(arr)


def as_indices(name: str, value, n: int) -> np.ndarray:
    """A block of time indices into ``range(n)`` as a sorted int array.

    Accepts a slice, a range, a 1-D array or list of integers, or a boolean mask of length n.
    """
    if value is None:
        raise LabCheckError(f"`{name}` is None")
    if isinstance(value, slice | range):
        idx = np.arange(n)[value] if isinstance(value, slice) else np.asarray(value, dtype=int)
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            raise LabCheckError(f"`{name}` should be a slice or a 1-D array of integer time "
                                f"indices, got {describe(value)}") from None
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise LabCheckError(f"`{name}` as a boolean mask must have {n} entries, got "
                                    f"shape {arr.shape}")
            idx = np.flatnonzero(arr)
        elif arr.ndim != 1 or arr.dtype.kind not in "iu":
            kind = ("floats: index with integers (np.arange gives them), not with times or "
                    "float arrays" if arr.dtype.kind == "f" else f"{describe(value)}")
            raise LabCheckError(f"`{name}` should be a slice or a 1-D array of integer time "
                                f"indices, got {kind}")
        else:
            idx = arr.astype(int)
    if idx.size == 0:
        raise LabCheckError(f"`{name}` is empty")
    if idx.min() < 0 or idx.max() >= n:
        raise LabCheckError(f"`{name}` holds indices outside 0..{n - 1}")
    return np.sort(idx)


def as_mapping(name: str, value, keys) -> Mapping:
    """``value`` if it is a dict holding every key in ``keys``."""
    keys = list(keys)
    if not isinstance(value, Mapping):
        raise LabCheckError(f"`{name}` should be a dict with the keys {keys}, got "
                            f"{describe(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise LabCheckError(f"`{name}` lacks the key(s) {missing}; it should hold {keys}")
    return value


def expect_times(name: str, t, *, start: float | None = None, end: float | None = None,
                 step: float | None = None, count: int | None = None, unit: str = "",
                 rtol: float = 1e-6) -> np.ndarray:
    """Check the time axis ``t`` of a run: its first and last value, spacing and length."""
    t = as_array(name, t)
    if t.ndim != 1 or t.size < 1:
        raise LabCheckError(f"`{name}` should be a 1-D array of times, got shape {t.shape}")
    u = f" {unit}" if unit else ""
    scale = max(abs(end or 0.0), abs(start or 0.0), abs(step or 0.0), 1e-300)
    if start is not None and abs(t[0] - start) > rtol * scale:
        raise LabCheckError(f"the run starts at t = {t[0]:.6g}{u}, not at t = {start:.6g}{u}: "
                            f"start it where the exercise says (initial state and time)")
    if step is not None and t.size > 1:
        dt = np.diff(t)
        if not np.allclose(dt, dt[0], rtol=1e-6) or abs(dt[0] - step) > rtol * max(step, 1e-300):
            raise LabCheckError(f"the saved times are {dt[0]:.6g}{u} apart, not {step:.6g}{u}: "
                                f"check the time step and how often you save")
    if end is not None and abs(t[-1] - end) > rtol * scale:
        what = "stops early" if t[-1] < end else "runs too long"
        raise LabCheckError(f"the run ends at t = {t[-1]:.6g}{u} but should end at "
                            f"t = {end:.6g}{u}: it {what}. Check the number of steps and the "
                            f"time step")
    if count is not None and t.size != count:
        raise LabCheckError(f"the run has {t.size} saved times, expected {count}")
    return t


def relative_error(got, want) -> float:
    """rms(got - want) / rms(want) (0 when both vanish)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = float(np.sqrt(np.mean(want**2)))
    err = float(np.sqrt(np.mean((got - want) ** 2)))
    return err / scale if scale > 0 else err


def ratio_text(got: float, want: float) -> str:
    """``"+12%"`` for a near miss, ``"3.2 times"`` for a large one, for messages."""
    if want == 0:
        return f"{got:.3g} (expected 0)"
    r = got / want
    if 0.5 < r < 2:
        return f"{r - 1:+.1%} off"
    return f"{r:.3g} times the expected value"


# ---------------------------------------------------------------------------------------
# forbidden shortcuts


def _resolve(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    return importlib.import_module(module_name), attr


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def uses_any(func, targets) -> list[str]:
    """Which of the dotted names in ``targets`` the code of ``func`` visibly refers to (by
    attribute or by a global bound to the same object)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return []
    names = _code_names(code)
    glob = dict(getattr(func, "__globals__", {}))
    for free, cell in zip(code.co_freevars, getattr(func, "__closure__", None) or (),
                          strict=False):
        try:
            glob[free] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        names.add(free)
    found = []
    for dotted in targets:
        module, attr = _resolve(dotted)
        target = getattr(module, attr, None)
        if target is None:
            continue
        if attr in names and (attr not in glob or glob[attr] is target):
            found.append(dotted)
        elif any(glob.get(n) is target for n in names if n in glob):
            found.append(dotted)
    return found


@contextlib.contextmanager
def forbid(targets: Mapping[str, str | tuple]) -> Iterator[None]:
    """While the block runs, calling any function in ``targets`` raises :class:`ForbiddenCall`.

    ``targets`` maps dotted names (``"nnparam.stochastic.green_kubo"``) to the message for the
    student, or to ``(message, when)`` where ``when(*args, **kwargs)`` says which calls are
    banned (``torch.linalg.norm`` of a vector is fine, of a matrix with ``ord=2`` not). Use it
    around :func:`call` to catch an engine shortcut the exercise rules out.
    """
    saved = []
    try:
        for dotted, spec in targets.items():
            message, when = spec if isinstance(spec, tuple) else (spec, None)
            module, attr = _resolve(dotted)
            original = getattr(module, attr, None)
            if original is None:
                continue

            def banned(*args, _message=message, _name=dotted, _when=when, _orig=original,
                       **kwargs):
                if _when is not None and not _when(*args, **kwargs):
                    return _orig(*args, **kwargs)
                raise ForbiddenCall(f"your code calls {_name}: {_message}")

            saved.append((module, attr, original))
            setattr(module, attr, banned)
        yield
    finally:
        for module, attr, original in reversed(saved):
            setattr(module, attr, original)


def call_without(name: str, func, targets: Mapping[str, str | tuple], *args, inputs=None,
                 **kwargs):
    """:func:`call` with the shortcuts in ``targets`` forbidden: at run time (:func:`forbid`)
    and, for targets given as a plain message, by name in the function's code."""
    static = {k: v for k, v in targets.items() if not isinstance(v, tuple)}
    used = uses_any(func, static)
    if used:
        raise LabCheckError(f"`{name}` uses {used[0]}: {static[used[0]]}")
    with forbid(targets):  # a ForbiddenCall is a LabCheckError: call() lets it through
        return call(name, func, *args, inputs=inputs, **kwargs)
