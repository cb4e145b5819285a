"""The coarse pyqg-jax model with a closure in its compiled time loop.

One jitted loop (:func:`integrate`) steps a batch of ensemble members with ``jax.vmap`` and
keeps ``q`` at fixed intervals; the model and the closure are arguments of the compiled
function (JAX pytrees), so both configurations and every network of the same shape share one
compilation. A closure is

* ``None``: the model alone (pyqg-jax's no-op parameterization);
* a name in :data:`BASELINES`: the physical closures shipped with pyqg-jax, with the constants
  of the benchmark's notebook (Smagorinsky ``C_s = 0.15``; backscatter-biharmonic ``C_s =
  sqrt(0.007)``, ``C_b = 1.2``) and the Zanna-Bolton (2020) coefficient of pyqg, ``kappa =
  -4.676e7 m^2`` on its 64^2 grid, scaled with the grid area (``kappa ~ dx^2``) elsewhere;
* a :class:`nnparam.apps.qg_net.QGClosure`: its weights enter the loop as JAX arrays and the
  network runs as FFT products inside it (no call back to torch);
* any callable ``S_q = f(q)`` on numpy PV (2, n, n): called through ``jax.pure_callback``
  every step (general, and slow).

A member that leaves the finite numbers is noted with its step; once every member has, the
remaining steps are skipped, so a blow-up ends the run cleanly instead of filling it with NaN
arithmetic.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pyqg_jax

from .qg_model import COMMON, YEAR, model

BASELINES = ("smagorinsky", "backscatter", "zb2020")
ZB2020_KAPPA_64 = -46761284.0  # m^2, pyqg's default for its 64^2 grid (dx = 15.6 km)
_CLOSURE_FORMS = f"None, one of {BASELINES}, a QGClosure or a callable S_q = f(q)"


@pyqg_jax.parameterizations.q_parameterization
def _network_forcing(state, param_aux, model, *, weights):
    from .qg_net import jax_forward

    return jax_forward(weights, state.q), None


@pyqg_jax.parameterizations.q_parameterization
def _callback_forcing(state, param_aux, model, *, function):
    q = state.q

    def host(q_value):
        return np.asarray(function(np.asarray(q_value)), dtype=np.float64)

    return jax.pure_callback(host, jax.ShapeDtypeStruct(q.shape, q.dtype), q,
                             vmap_method="sequential"), None


def parameterized(base, closure):
    """``base`` wrapped in the closure: None, a name in BASELINES, a QGClosure or a callable."""
    par = pyqg_jax.parameterizations
    if closure is None:
        return par.noop.apply_parameterization(base)
    if isinstance(closure, str):
        dx = COMMON["L"] / base.nx
        if closure == "smagorinsky":
            return par.smagorinsky.apply_parameterization(base, constant=0.15)
        if closure == "backscatter":
            return par.backscatterbiharmonic.apply_parameterization(
                base, smag_constant=float(np.sqrt(0.007)), back_constant=1.2)
        if closure == "zb2020":
            kappa = ZB2020_KAPPA_64 * (dx / (COMMON["L"] / 64)) ** 2
            return par.zannabolton2020.apply_parameterization(base, kappa=kappa)
        raise ValueError(f"closure must be {_CLOSURE_FORMS}, got {closure!r}")
    weights = closure.jax_weights(base.nx) if hasattr(closure, "jax_weights") else None
    if weights is not None:
        return par.ParameterizedModel(base, jax.tree_util.Partial(_network_forcing,
                                                                  weights=weights))
    if callable(closure):
        return par.ParameterizedModel(base, jax.tree_util.Partial(
            functools.partial(_callback_forcing, function=closure)))
    raise ValueError(f"closure must be {_CLOSURE_FORMS}, got {type(closure).__name__}")


@functools.partial(jax.jit, static_argnames=("n_saves",))
def _roll(stepped, state, bad_step, n_inner, n_saves):
    """Advance a batch of members ``n_saves * n_inner`` steps, keeping ``q`` every ``n_inner``.

    ``bad_step`` (members,) holds -1, or the step at which a member left the finite numbers;
    once every member has, the remaining steps are skipped (the run stops cleanly).
    """

    def step(carry, _):
        state, bad = carry

        def advance(s):
            return jax.vmap(stepped.step_model)(s)

        new = jax.lax.cond(jnp.all(bad >= 0), lambda s: s, advance, state)
        qh = new.state.model_state.qh if hasattr(new.state, "model_state") else new.state.qh
        finite = jnp.isfinite(jnp.sum(jnp.abs(qh), axis=(-3, -2, -1)))
        bad = jnp.where((bad < 0) & ~finite, new.tc.astype(jnp.int64), bad)
        return (new, bad), None

    def save(carry, _):
        carry = jax.lax.fori_loop(0, n_inner, lambda i, c: step(c, None)[0], carry)
        inner = carry[0].state
        inner = inner.model_state if hasattr(inner, "model_state") else inner
        return carry, inner.q

    (state, bad_step), saved = jax.lax.scan(save, (state, bad_step), None, length=n_saves)
    return state, bad_step, saved


def integrate(nx: int, config: str, closure, q0: np.ndarray, dt: float, n_inner: int,
               n_saves: int):
    """Run members from ``q0`` (M, 2, nx, nx); return saved q (n_saves, M, 2, nx, nx), the
    final q (M, 2, nx, nx) and the step at which each member blew up (-1: never)."""
    base = model(nx, config)
    param = parameterized(base, closure)
    stepped = pyqg_jax.steppers.SteppedModel(param, pyqg_jax.steppers.AB3Stepper(dt=dt))
    template = base.create_initial_state(jax.random.key(0))

    def init(q):
        return stepped.initialize_stepper_state(param.initialize_param_state(
            template.update(q=q)))

    state = jax.vmap(init)(jnp.asarray(q0))
    bad = -jnp.ones(q0.shape[0], dtype=jnp.int64)
    state, bad, saved = _roll(stepped, state, bad, n_inner, n_saves)
    final = state.state.model_state.q
    return np.asarray(saved), np.asarray(final), np.asarray(bad)


def run(nx, config, closure, q0, dt, spin_saves, n_inner, n_saves):
    """Integrate members from ``q0``; drop the first ``spin_saves`` records. Returns saved q
    (M, n_saves, 2, nx, nx), the final q and the blow-up time of each member (s, NaN: never)."""
    saved, final, bad = integrate(nx, config, closure, q0, dt, n_inner, spin_saves + n_saves)
    blew_up = np.where(bad >= 0, bad * dt, np.nan)
    for member in np.flatnonzero(bad >= 0):
        warnings.warn(f"{config} run at {nx}^2 (member {member}) left the finite numbers at "
                      f"step {bad[member]} (t = {bad[member] * dt / YEAR:.2f} years) and was "
                      "stopped; its later records are NaN", RuntimeWarning, stacklevel=3)
    return np.moveaxis(saved[spin_saves:], 1, 0), final, blew_up


def closure_key(closure) -> str | None:
    """A cache key for ``closure`` (None for a plain callable, which is never cached)."""
    if closure is None:
        return "none"
    if isinstance(closure, str):
        return closure
    if hasattr(closure, "weights_hash"):
        return f"fcnn-{closure.weights_hash()}"
    return None


def check_closure(closure, q0: np.ndarray) -> None:
    """Call a network or callable closure once and refuse a wrong shape or NaN output."""
    if closure is None or isinstance(closure, str):
        parameterized(model(q0.shape[-1]), closure)  # validates the name
        return
    if not callable(closure):
        raise ValueError(f"closure must be {_CLOSURE_FORMS}, got {type(closure).__name__}")
    try:
        out = np.asarray(closure(q0[0]), dtype=float)
    except Exception as err:  # report which argument failed, whatever the closure raised
        raise ValueError(f"closure failed on a state q of shape {q0[0].shape}: "
                         f"{type(err).__name__}: {err}") from err
    if out.shape != q0[0].shape:
        raise ValueError(f"closure must return S_q with the shape of q {q0[0].shape} "
                         f"(layer, y, x) in 1/s^2, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError("closure returned NaN or inf for a finite state q")
    if hasattr(closure, "jax_weights"):
        from .qg_net import jax_forward

        twin = np.asarray(jax_forward(closure.jax_weights(q0.shape[-1]), jnp.asarray(q0[0])))
        scale = np.abs(out).max()
        if scale > 0 and np.abs(twin - out).max() > 1e-4 * scale:
            raise ValueError("closure: its JAX twin disagrees with the torch network")
