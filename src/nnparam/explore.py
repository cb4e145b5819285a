"""Interactive explorers. Each wraps a pure plotting function that the static book also calls,
so the HTML pages teach the same picture without a running kernel.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._validate import finite_array, positive, positive_int
from .stability import amplification_factor, max_stable_timestep


def plot_stability(h: float, k_over_lam: float, lam: float, n_steps: int = 30, axes=None):
    """Three panels for forward Euler on ``dq/dt = (k - lam) q`` at one setting.

    (a) the amplification factor ``A = 1 + h (k - lam)`` against ``k/lam`` with the stable band
    ``|A| < 1``; (b) the stable region in the ``(h, k/lam)`` plane with the current point;
    (c) the trajectory ``q_n`` from ``q_0 = 1`` against time.

    Parameters: ``h`` timestep (s), ``k_over_lam`` closure slope in units of ``lam``,
    ``lam`` damping rate (1/s), ``n_steps`` steps of the trajectory; ``axes`` three matplotlib
    axes to draw into (a new figure when None). Returns the figure.
    """
    h, lam = positive("h", h), positive("lam", lam)
    r = float(finite_array("k_over_lam", k_over_lam, ndim=0))
    n_steps = positive_int("n_steps", n_steps)
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
    else:
        if len(axes) != 3:
            raise ValueError(f"axes must hold 3 matplotlib axes, got {len(axes)}")
        fig = axes[0].figure
    ax_a, ax_hk, ax_q = axes
    amp = amplification_factor(h, r * lam, lam)
    stable = abs(amp) < 1
    colour = "tab:blue" if stable else "tab:red"

    ratios = np.linspace(-4, 2, 241)
    ax_a.axhspan(-1, 1, color="0.9", label="stable band $|A|<1$")
    ax_a.plot(ratios, amplification_factor(h, ratios * lam, lam), color="k", lw=1.2)
    ax_a.plot([r], [amp], "o", color=colour, label=f"A = {amp:.2f}")
    ax_a.set(xlabel="closure slope k / lam (-)", ylabel="amplification factor A (-)",
             title=f"(a) A at h = {h:.0f} s", ylim=(-4, 3))
    ax_a.legend(loc="lower right", fontsize=8)

    hs = np.logspace(np.log10(h) - 1.5, np.log10(h) + 1.5, 200)
    lower = 1 - 2 / (hs * lam)  # stable k/lam lies in (1 - 2/(h lam), 1)
    ax_hk.fill_between(hs, np.maximum(lower, -4), 1, color="0.85", label="stable")
    ax_hk.axhline(1, color="k", lw=0.8, ls="--")
    ax_hk.plot([h], [r], "o", color=colour, label="current (h, k)")
    ax_hk.set(xscale="log", xlabel="timestep h (s)", ylabel="closure slope k / lam (-)",
              title="(b) stable region in the (h, k) plane", ylim=(-4, 2))
    ax_hk.legend(loc="lower left", fontsize=8)

    n = np.arange(n_steps + 1)
    ax_q.plot(n * h / 3600, amp**n, "o-", ms=3, color=colour)
    ax_q.axhline(0, color="k", lw=0.6)
    hmax = max_stable_timestep(lam, r * lam)
    ax_q.set(xlabel="time (h)", ylabel="perturbation q_n (q_0 = 1)",
             title=f"(c) trajectory; h_max = {hmax:.3g} s" if hmax > 0
             else "(c) trajectory; no stable step")
    if not stable:
        ax_q.set_yscale("symlog", linthresh=1)
    return fig


def stability_explorer(h: float = 3600.0, k_over_lam: float = 0.7, lam: float = 1 / 7200):
    """Sliders for ``h`` (s), ``k/lam`` and ``lam`` (1/s) driving :func:`plot_stability`.

    Returns an ``ipywidgets`` widget (display it in JupyterLab); it builds without a browser.
    """
    import ipywidgets as widgets

    h, lam = positive("h", h), positive("lam", lam)
    k_over_lam = float(finite_array("k_over_lam", k_over_lam, ndim=0))

    def show(h, k_over_lam, lam):
        plot_stability(h, k_over_lam, lam)
        plt.show()

    return widgets.interactive(
        show,
        h=widgets.FloatLogSlider(value=h, base=10, min=1, max=6, step=0.05,
                                 description="h (s)", continuous_update=False),
        k_over_lam=widgets.FloatSlider(value=k_over_lam, min=-4, max=2, step=0.05,
                                       description="k / lam", continuous_update=False),
        lam=widgets.FloatLogSlider(value=lam, base=10, min=-6, max=-2, step=0.05,
                                   description="lam (1/s)", readout_format=".2e",
                                   continuous_update=False),
    )
