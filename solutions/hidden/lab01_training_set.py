"""Hidden checks of lab 1 (run by the grader only)."""

import numpy as np

from nnparam import filters
from nnparam.labs.feedback import as_ndarray, call, passed, require


def exercise_1(coarse_grain):
    """Fields and factors the visible check never uses: odd factors, integers, 4-D."""
    rng = np.random.default_rng(2024)
    for shape, factor in (((27,), 3), ((2, 2, 3, 35), 7), ((6, 40), 5)):
        field = rng.integers(-5, 5, size=shape)
        out = call("coarse_grain", coarse_grain, field, factor)
        got = as_ndarray("coarse_grain", out)
        want = filters.coarse_grain(field.astype(float), factor)
        require(got.shape == want.shape and np.allclose(got, want),
                f"coarse_grain is wrong for a field of shape {shape}, factor {factor}")
    passed("coarse_grain on new shapes and factors")


def exercise_2(cells):
    """The budget is computed by hand, not taken from the engine."""
    for name in ("sgs_budget(", "budget_terms("):
        require(not any(name in src for src in cells),
                f"the notebook calls tracer.{name[:-1]}: the exercise asks for the "
                f"budget by hand")
    passed("no engine shortcut")


def exercise_4(data, q_bar, u_bar_face, sgs, train_t, val_t, test_t):
    """The provided feature cell was not edited: the blocks hold the stencil features
    and targets of the notebook's own coarse state, split as in exercise 3."""
    cols = [np.roll(q_bar, shift, axis=-1) for shift in (2, 1, 0, -1, -2)]
    cols += [np.roll(u_bar_face, 1, axis=-1), u_bar_face]
    x = np.stack(cols, axis=-1)
    blocks = {"train": train_t, "validation": val_t, "test": test_t}
    for name, block in blocks.items():
        want_x = x[block].reshape(-1, x.shape[-1])
        want_y = np.asarray(sgs)[block].reshape(-1, 1)
        x_ok = np.allclose(data[name][0], want_x)
        require(x_ok and np.allclose(data[name][1], want_y),
                f"data[{name!r}] does not hold the stencil features and SGS tendencies "
                f"of the {name} block: was the provided cell changed?")
    passed("the feature blocks are the lab's own")


def exercise_5(model):
    """The network is the one the exercise asks for."""
    import torch

    shapes = [tuple(m.weight.shape) for m in model.modules()
              if isinstance(m, torch.nn.Linear)]
    require(shapes == [(32, 7), (32, 32), (1, 32)],
            f"the network's layers are {shapes}, not nn.mlp(7, 1, hidden=(32, 32))")
    passed("the network is nn.mlp(7, 1, hidden=(32, 32))")
