"""The explorer's pure plotting function and its widget, built headless."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nnparam import explore


@pytest.mark.parametrize("ratio", [0.7, -3.5, 1.2])
def test_plot_stability_returns_labelled_figure(ratio):
    fig = explore.plot_stability(3600.0, ratio, 1 / 7200)
    axes = fig.axes
    assert len(axes) >= 3
    for ax in axes[:3]:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "(s)" in axes[1].get_xlabel()
    plt.close(fig)


def test_plot_stability_draws_into_given_axes_and_marks_point():
    fig, axes = plt.subplots(2, 3)
    out = explore.plot_stability(9000.0, -1.0, 1 / 7200, axes=axes[1])
    assert out is fig
    x, y = axes[1][1].lines[-1].get_data()
    assert x[0] == pytest.approx(9000.0) and y[0] == pytest.approx(-1.0)
    # trajectory follows q_n = A^n with A = 1 + h(k - lam) = 1 - 2.5 = -1.5
    _, qn = axes[1][2].lines[0].get_data()
    np.testing.assert_allclose(qn[:3], [1.0, -1.5, 2.25])
    plt.close(fig)


def test_widget_builds_headless():
    widget = explore.stability_explorer()
    values = {w.description: w.value for w in widget.kwargs_widgets}
    assert values["h (s)"] == pytest.approx(3600.0)
    assert values["k / lam"] == pytest.approx(0.7)
    widget.kwargs_widgets[1].value = -2.0  # moving a slider re-draws without error
    plt.close("all")


@pytest.mark.parametrize("kwargs, name", [
    (dict(h=0.0, k_over_lam=0.5, lam=1e-4), "h"),
    (dict(h=10.0, k_over_lam=np.nan, lam=1e-4), "k_over_lam"),
    (dict(h=10.0, k_over_lam=0.5, lam=-1e-4), "lam"),
    (dict(h=10.0, k_over_lam=0.5, lam=1e-4, n_steps=0), "n_steps"),
])
def test_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        explore.plot_stability(**kwargs)
