"""A-posteriori learning: differentiable coarse models and training through the solver.

* :mod:`nnparam.aposteriori.models`: the stability toy (:class:`RelaxationModel`), the tracer
  (:class:`TracerModel`), Burgers (:class:`BurgersModel`) and one-scale Lorenz-96
  (:class:`Lorenz96Model`) as steppers that accept numpy arrays or torch tensors, built on
  the very functions the numpy integrators use;
* :mod:`nnparam.aposteriori.training`: the unrolled loss, the training loop (truncated
  windows, gradient clipping, multi-step weights), and the diagnostics of its cost (gradient
  norm, time and memory per window) and of the predictability time (Lyapunov exponent).
"""

from .models import (
                     BurgersModel,
                     CoarseModel,
                     Lorenz96Model,
                     RelaxationModel,
                     TracerModel,
                     closure_function,
)
from .training import loss_gradient, lyapunov_exponent, train_unrolled, unrolled_loss

__all__ = ["BurgersModel", "CoarseModel", "Lorenz96Model", "RelaxationModel", "TracerModel",
           "closure_function", "loss_gradient", "lyapunov_exponent", "train_unrolled",
           "unrolled_loss"]
