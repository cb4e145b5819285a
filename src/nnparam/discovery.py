"""Equation discovery: sparse regression of a subgrid term on a library of candidate terms.

The recipe of SINDy (Brunton, Proctor & Kutz 2016), applied to a closure target instead of a
time derivative: build a library ``Theta(features)`` of candidate terms (monomials of the
inputs, or physically motivated terms), then find a sparse coefficient vector ``xi`` with
``target ~ Theta xi`` by sequentially thresholded least squares (``pysindy.STLSQ``).

The threshold is a statement about coefficients, so it only means something in chosen units.
:func:`fit_sparse` therefore **normalises** before thresholding: every library column is
divided by its root-mean-square over the fitting samples and the target by its own, so a
normalised coefficient is "the typical contribution of this term, as a fraction of the
target's typical size", whatever the units or powers of the inputs; coefficients are mapped
back to physical units afterwards. Without it, ``X^4`` (of order 10^4 on Lorenz-96) keeps a
coefficient of 10^-3 that a threshold of 0.1 deletes although the term matters, and a constant
of order 0.1 survives however useless (pysindy's own ``normalize_columns`` divides by the L2
norm, which grows with the number of samples, so its threshold drifts with the record length).

:func:`threshold_path` refits over a range of thresholds and scores each model on a
validation block; :func:`sparsest_within` picks the sparsest model that keeps a given share
of the best validation skill (a parsimony rule; the test block stays untouched).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._validate import finite_array, positive
from .evaluation import r2_score

__all__ = ["TermLibrary", "SparseModel", "fit_sparse", "threshold_path", "sparsest_within"]


def _monomial(powers: np.ndarray) -> Callable:
    def term(feats):
        out = np.ones(feats.shape[:-1])
        for j, p in enumerate(powers):
            if p:
                out = out * feats[..., j] ** int(p)
        return out

    return term


class TermLibrary:
    """Candidate terms of a sparse regression: names and one function per term.

    Build one with :meth:`polynomial` (all monomials of the inputs up to a degree, enumerated
    by ``pysindy.PolynomialLibrary``) or :meth:`from_functions` (one callable per term, e.g.
    ``{"|S| S": lambda f: np.abs(f[..., 0]) * f[..., 0]}``); join libraries with ``+``.
    Calling the library on features ``(..., F)`` gives the terms ``(..., T)``.
    """

    def __init__(self, input_names: Sequence[str], names: Sequence[str],
                 functions: Sequence[Callable]):
        self.input_names = tuple(str(n) for n in input_names)
        self.names = tuple(str(n) for n in names)
        self.functions = tuple(functions)
        if not self.input_names:
            raise ValueError("a library needs at least one input name")
        if not self.names:
            raise ValueError("the library is empty: give at least one candidate term")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"library term names must be unique, got {self.names}")
        if len(self.functions) != len(self.names) or not all(map(callable, self.functions)):
            raise ValueError("give one callable of the features per library term")

    @classmethod
    def polynomial(cls, input_names: Sequence[str], degree: int,
                   include_bias: bool = True) -> TermLibrary:
        """All monomials of the inputs up to ``degree`` (``"1"``, ``"x"``, ``"x y"``, ...)."""
        import pysindy as ps

        input_names = tuple(input_names)
        if not input_names:
            raise ValueError("input_names must name at least one input")
        if isinstance(degree, bool) or int(degree) != degree or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        lib = ps.PolynomialLibrary(degree=int(degree), include_bias=include_bias)
        lib.fit(np.zeros((1, len(input_names))))
        names = lib.get_feature_names(list(input_names))
        return cls(input_names, names, [_monomial(p) for p in np.asarray(lib.powers_)])

    @classmethod
    def from_functions(cls, input_names: Sequence[str],
                       functions: Mapping[str, Callable]) -> TermLibrary:
        """One term per ``name: callable(features) -> (...)`` (features ``(..., F)``)."""
        if not isinstance(functions, Mapping) or not functions:
            raise ValueError("the library is empty: functions must map term names to callables")
        return cls(input_names, tuple(functions), tuple(functions.values()))

    def __add__(self, other: TermLibrary) -> TermLibrary:
        if not isinstance(other, TermLibrary) or other.input_names != self.input_names:
            raise ValueError("only libraries of the same inputs can be joined")
        return TermLibrary(self.input_names, self.names + other.names,
                           self.functions + other.functions)

    def __len__(self) -> int:
        return len(self.names)

    def _checked(self, features) -> np.ndarray:
        feats = finite_array("features", features)
        if feats.ndim < 1 or feats.shape[-1] != len(self.input_names):
            raise ValueError(f"features must have {len(self.input_names)} columns "
                             f"{self.input_names} on the last axis, got shape {feats.shape}")
        return feats

    def evaluate(self, features, terms: Sequence[int] | None = None) -> np.ndarray:
        """The terms with indices ``terms`` (default: all), shape ``(..., len(terms))``."""
        feats = self._checked(features)
        idx = range(len(self.names)) if terms is None else terms
        cols = [np.broadcast_to(np.asarray(self.functions[i](feats), dtype=float),
                                feats.shape[:-1]) for i in idx]
        if not cols:
            return np.zeros(feats.shape[:-1] + (0,))
        return np.stack(cols, axis=-1)

    def __call__(self, features) -> np.ndarray:
        """Evaluate every term: ``(..., F)`` features to ``(..., T)`` terms."""
        return self.evaluate(features)

    def __repr__(self) -> str:
        return f"TermLibrary({len(self)} terms of {self.input_names})"


@dataclass(frozen=True)
class SparseModel:
    """A discovered equation ``target = sum_t coef[t] * term_t(features)``.

    ``coef`` is in physical units (one per library term, zeros outside the support);
    ``threshold`` and ``normalized`` record how it was found; ``target`` names the left side.
    """

    library: TermLibrary
    coef: np.ndarray
    threshold: float
    normalized: bool
    target: str = "y"

    @property
    def support(self) -> tuple[str, ...]:
        """Names of the terms kept (non-zero coefficients)."""
        return tuple(n for n, c in zip(self.library.names, self.coef, strict=True) if c != 0)

    @property
    def n_terms(self) -> int:
        return int(np.count_nonzero(self.coef))

    def terms(self) -> dict[str, float]:
        """``{term name: coefficient}`` of the kept terms."""
        return {n: float(c) for n, c in zip(self.library.names, self.coef, strict=True)
                if c != 0}

    def __call__(self, features) -> np.ndarray:
        """Evaluate the equation on features ``(..., F)``: ``(...)`` (only the kept terms)."""
        kept = np.flatnonzero(self.coef)
        feats = self.library._checked(features)
        if kept.size == 0:
            return np.zeros(feats.shape[:-1])
        return self.library.evaluate(feats, kept) @ self.coef[kept]

    def on_stencil(self, width: int) -> Callable:
        """The equation as a field closure ``x (..., n) -> (..., n)`` whose inputs are the
        periodic stencils ``[x[i-w], ..., x[i+w]]`` (the library's inputs, in that order)."""
        from .closure import stencil_features

        if 2 * int(width) + 1 != len(self.library.input_names):
            raise ValueError(f"a stencil of width {width} gives {2 * int(width) + 1} inputs, "
                             f"the library takes {len(self.library.input_names)}")

        def closure(x):
            return self(stencil_features(np.asarray(x, dtype=float), width=int(width)))

        closure.equation = self.equation()
        return closure

    def equation(self, digits: int = 4) -> str:
        """The equation as text, e.g. ``"U = -1.49 X[k] + 0.0137 X[k]^3"``."""
        parts = []
        for name, c in self.terms().items():
            mag = f"{abs(c):.{digits}g}"
            term = mag if name == "1" else f"{mag} {name}"
            parts.append(("- " if c < 0 else "+ ") + term)
        body = " ".join(parts) if parts else "0"
        return f"{self.target} = {body[2:] if body.startswith('+ ') else body}"

    def __str__(self) -> str:
        return self.equation()


def _design(library: TermLibrary, features, target) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(library, TermLibrary):
        raise ValueError(f"library must be a TermLibrary, got {type(library).__name__}")
    feats = finite_array("features", features)
    y = finite_array("target", target)
    if feats.ndim < 2 or y.shape != feats.shape[:-1]:
        raise ValueError(f"target must have the shape of features without their last axis: "
                         f"features {feats.shape}, target {y.shape}")
    theta = library(feats).reshape(-1, len(library))
    y = y.reshape(-1)
    if y.size <= len(library):
        raise ValueError(f"need more samples ({y.size}) than library terms ({len(library)})")
    return theta, y


def _rms(a, axis=None):
    return np.sqrt(np.mean(np.square(a), axis=axis))


def fit_sparse(library: TermLibrary, features, target, threshold: float, *,
               normalize: bool = True, alpha: float = 0.0, max_iter: int = 20,
               target_name: str = "y") -> SparseModel:
    """Sequentially thresholded least squares (``pysindy.STLSQ``) of ``target`` on the library.

    ``features`` ``(..., F)`` and ``target`` ``(...)`` are the fitting samples (a training
    block only). With ``normalize`` (the default, see the module notes) the threshold applies
    to coefficients of RMS-normalised terms and target; ``alpha`` is an optional ridge
    penalty on those. The kept terms are refitted by plain least squares (pysindy's
    ``unbias``). Returns the :class:`SparseModel` in physical units.
    """
    import pysindy as ps

    theta, y = _design(library, features, target)
    if isinstance(threshold, bool) or not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    col_scale = _rms(theta, axis=0) if normalize else np.ones(theta.shape[1])
    if np.any(col_scale == 0):
        dead = [n for n, s in zip(library.names, col_scale, strict=True) if s == 0]
        raise ValueError(f"library terms {dead} are zero on every sample: drop them")
    y_scale = _rms(y) if normalize else 1.0
    if y_scale == 0:
        raise ValueError("target is zero on every sample: nothing to discover")
    opt = ps.STLSQ(threshold=float(threshold), alpha=alpha, max_iter=int(max_iter))
    with warnings.catch_warnings():  # "eliminated all coefficients" is a valid answer here
        warnings.simplefilter("ignore", UserWarning)
        opt.fit(theta / col_scale, y / y_scale)
    coef = np.asarray(opt.coef_, dtype=float).reshape(-1) * y_scale / col_scale
    return SparseModel(library, coef, float(threshold), bool(normalize), str(target_name))


def threshold_path(library: TermLibrary, features, target, thresholds, validation,
                   **kw) -> list[tuple[float, SparseModel, float]]:
    """Fit at each threshold and score on a validation block.

    ``validation`` is ``(features_val, target_val)`` from a block kept apart from the fit
    (and from the final test). Returns ``[(threshold, model, validation R^2), ...]`` in the
    order of ``thresholds``; ``kw`` go to :func:`fit_sparse`.
    """
    ths = finite_array("thresholds", thresholds, ndim=1)
    if ths.size == 0:
        raise ValueError("thresholds must hold at least one value")
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise ValueError("validation must be a pair (features_val, target_val)")
    f_val, y_val = (finite_array("validation features", validation[0]),
                    finite_array("validation target", validation[1]))
    if y_val.shape != f_val.shape[:-1]:
        raise ValueError(f"validation target must have shape {f_val.shape[:-1]}, got "
                         f"{y_val.shape}")
    path = []
    for th in ths:
        model = fit_sparse(library, features, target, float(th), **kw)
        path.append((float(th), model, r2_score(y_val, model(f_val))))
    return path


def sparsest_within(path, keep: float = 0.95) -> tuple[float, SparseModel, float]:
    """The sparsest model of a :func:`threshold_path` whose validation R^2 is at least
    ``keep`` times the best one (ties: the larger threshold)."""
    if not path:
        raise ValueError("path is empty: run threshold_path first")
    keep = positive("keep", keep)
    if keep > 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    best = max(score for _, _, score in path)
    if best <= 0:
        raise ValueError("no model of the path has positive validation skill")
    ok = [p for p in path if p[2] >= keep * best and p[1].n_terms > 0]
    return min(ok, key=lambda p: (p[1].n_terms, -p[0]))
