"""The grader's side inside a student's kernel (used only by :mod:`nnparam.labs.grading`).

Before the first student cell runs, :class:`Grader` imports the lab's check modules and keeps
a copy of their namespaces. After each exercise, the grader sends one cell,
``grader.run(number, code, aliases)``, which

1. puts back every attribute of the check modules (and of this module and
   :mod:`~nnparam.labs.feedback`) that the notebook may have replaced, e.g. a redefined
   ``check.coarse_grain``;
2. runs the lab's own check code for that exercise (not the student's copy of the check cell)
   in a shallow copy of the student's namespace, with the check names bound to the installed
   package's objects, the global random states saved and restored, and random generators in
   the namespace copied, so the re-run changes nothing the notebook sees later;
3. runs the instructor's hidden check ``exercise_<number>`` if there is one, its parameters
   bound by name to the notebook's objects (a parameter named ``cells`` receives the sources
   of the code cells the notebook has run so far, to spot a forbidden shortcut);
4. displays the result as one ``application/vnd.nnparam.grade+json`` output.

This defends against edited, deleted and redefined checks. It is not a sandbox: code written
to subvert the grader (patching numpy, say) runs in the same process.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import io
import random
import sys
import types

MIME = "application/vnd.nnparam.grade+json"
FEEDBACK = "nnparam.labs.feedback"


def _frame_line(err: BaseException) -> str:
    from .feedback import _student_frame

    frame = _student_frame(err.__traceback__)
    return f" (at `{frame.line.strip()}`)" if frame is not None and frame.line else ""


def _message(err: BaseException) -> tuple[str, str]:
    """``(error name, message for the report)`` of an exception raised by check code."""
    name = type(err).__name__
    if name == "LabCheckError" or isinstance(err, AssertionError) and str(err):
        return name, str(err) if name == "LabCheckError" else f"AssertionError: {err}"
    if isinstance(err, NotImplementedError):
        return name, f"not implemented ({err})" if str(err) else "not implemented"
    text = f"{name}: {err}{_frame_line(err)}"
    if isinstance(err, NameError):
        text += " (the name is not defined when the check runs: an earlier cell failed, or " \
                "the name was changed)"
    return name, text


class Grader:
    """Grading state in the student's kernel; see the module docstring."""

    def __init__(self, namespace: dict, modules):
        self.namespace = namespace
        self.snapshot = {}
        for name in sorted(set(modules) | {FEEDBACK, __name__}):
            module = importlib.import_module(name)
            self.snapshot[name] = (module, dict(vars(module)))
        self.hidden: types.ModuleType | None = None
        self.hidden_error: str | None = None

    # -- protection -------------------------------------------------------------------
    def _restore(self) -> None:
        for name, (module, saved) in self.snapshot.items():
            sys.modules[name] = module
            for key, value in saved.items():
                if vars(module).get(key, None) is not value:
                    setattr(module, key, value)

    def _bind(self, aliases: dict) -> dict:
        bound = {}
        for alias, (module_name, attr) in aliases.items():
            module = self.snapshot.get(module_name, (None,))[0]
            if module is None:
                module = importlib.import_module(module_name)
            bound[alias] = module if attr is None else getattr(module, attr)
        return bound

    def _namespace(self, aliases: dict) -> dict:
        import numpy as np

        ns = dict(self.namespace)
        for key, value in ns.items():
            if isinstance(value, np.random.Generator | random.Random):
                ns[key] = copy.deepcopy(value)
        ns.update(self._bind(aliases))
        return ns

    @contextlib.contextmanager
    def _isolated(self):
        import numpy as np

        torch = sys.modules.get("torch")
        states = (random.getstate(), np.random.get_state(),  # noqa: NPY002 (the legacy state)
                  torch.get_rng_state() if torch is not None else None)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield out
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])  # noqa: NPY002
            if torch is not None:
                torch.set_rng_state(states[2])

    # -- the two kinds of check --------------------------------------------------------
    def _run_code(self, number: int, code: str, aliases: dict) -> dict:
        if not code.strip():
            return {"ok": True, "message": "ran (the lab has no automatic check here)"}
        ns = self._namespace(aliases)
        with self._isolated() as out:
            try:
                exec(compile(code, f"<lab check of exercise {number}>", "exec"), ns)
            except BaseException as err:  # noqa: BLE001 - every failure is a result
                if isinstance(err, KeyboardInterrupt | SystemExit):
                    raise
                ename, message = _message(err)
                return {"ok": False, "error": ename, "message": message}
        oks = [ln.strip() for ln in out.getvalue().splitlines() if ln.strip().startswith("[ok]")]
        return {"ok": True, "message": " | ".join(oks) or "check ran without error"}

    def load_hidden(self, source: str, filename: str) -> None:
        """Load the instructor's hidden checks of this lab (a module's source)."""
        module = types.ModuleType("nnparam_hidden_checks")
        module.__file__ = filename
        try:
            exec(compile(source, filename, "exec"), vars(module))
        except Exception as err:  # a broken hidden file is the instructor's to see
            self.hidden_error = f"the hidden checks {filename} failed to load: " \
                                f"{type(err).__name__}: {err}"
            return
        self.hidden = module

    def student_cells(self) -> list[str]:
        """The sources of the code cells the notebook has run so far (IPython's ``In``),
        without the grader's own cells."""
        history = self.namespace.get("In", [])
        return [src for src in history if src and "__nnparam_grader__" not in src
                and "nnparam.labs.harness" not in src]

    def _run_hidden(self, number: int, aliases: dict) -> dict | None:
        if self.hidden_error:
            return {"ok": False, "error": "HiddenCheckError", "message": self.hidden_error}
        func = getattr(self.hidden, f"exercise_{number}", None) if self.hidden else None
        if func is None:
            return None
        ns = self._namespace(aliases)
        kwargs = {}
        for param in inspect.signature(func).parameters.values():
            if param.name == "cells":  # the sources of the student's code cells run so far
                kwargs["cells"] = self.student_cells()
            elif param.name in ns:
                kwargs[param.name] = ns[param.name]
            elif param.default is inspect.Parameter.empty:
                return {"ok": False, "error": "NameError",
                        "message": f"`{param.name}` is not defined in the notebook (an earlier "
                                   f"cell failed, or it was renamed)"}
        with self._isolated() as out:
            try:
                func(**kwargs)
            except BaseException as err:  # noqa: BLE001
                if isinstance(err, KeyboardInterrupt | SystemExit):
                    raise
                ename, message = _message(err)
                return {"ok": False, "error": ename, "message": message}
        oks = [ln.strip() for ln in out.getvalue().splitlines() if ln.strip().startswith("[ok]")]
        return {"ok": True, "message": " | ".join(oks) or "passed"}

    def run(self, number: int, code: str, aliases: dict) -> dict:
        """Check exercise ``number`` and display the result for the grader."""
        self._restore()
        result = {"exercise": number, **self._run_code(number, code, aliases)}
        self._restore()
        hidden = self._run_hidden(number, aliases)
        self._restore()
        if hidden is not None:
            result["hidden"] = hidden
        try:
            from IPython.display import display

            display({MIME: result}, raw=True)
        except ImportError:  # not in a kernel (tests call run() directly)
            pass
        return result
