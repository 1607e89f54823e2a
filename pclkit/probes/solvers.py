"""Full-batch deterministic linear solvers of the probes: standardisation, L-BFGS logistic regression, ridge paths.

Deterministic solvers (L-BFGS for logistic losses, a closed form for ridge)
make a probe a function of its inputs; randomness enters only through the data
subsets and pairs the caller draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pclkit.threads import torch_threads


@dataclass(frozen=True)
class Standardizer:
    """Per-dimension z-scoring with statistics of the training split only.

    The scale of each dimension is floored at ``floor`` x the median scale of
    the non-constant dimensions. ReLU features are often almost always zero on
    the training set; dividing by their tiny std would turn one unseen
    activation at test time into a value of hundreds of standard deviations
    and wreck a linear readout that never saw it.
    """

    mean: Tensor  # (D,)
    std: Tensor  # (D,)

    @staticmethod
    def fit(x: Tensor, floor: float = 0.1) -> Standardizer:
        std = x.std(dim=0, unbiased=False)
        alive = std[std > 1e-12]
        typical = alive.median() if alive.numel() else torch.tensor(1.0)
        return Standardizer(x.mean(dim=0), std.clamp_min(floor * typical))

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class LinearModel:
    """``logits = x @ weight + bias`` with ``weight (D, C)``, ``bias (C,)``."""

    weight: Tensor
    bias: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias


class LogisticProblem:
    """A full-batch linear classification problem, laid out for fast repeated L-BFGS fits.

    Softmax cross-entropy for class indices ``targets (N,)`` (``multilabel=False``),
    or independent sigmoid cross-entropies for binary ``targets (N, C)``
    (``multilabel=True``; the loss is a sum of per-column losses, so each column
    is the same problem as a separate binary probe). The objective is
    ``mean loss + l2/2 * |W|^2``; the bias is not penalised.

    Loss and gradient are written out by hand rather than through autograd:
    with ``x`` kept both as ``(N, D)`` and as a contiguous ``(D, N)`` copy,
    both products are row-major GEMMs, several times faster on CPU than the
    transposed product autograd takes for ``x^T @ grad``.
    """

    def __init__(self, x: Tensor, targets: Tensor, multilabel: bool = False, n_outputs: int | None = None):
        self.x = x.float().contiguous()  # (N, D)
        self.x_t = self.x.T.contiguous()  # (D, N)
        self.n = x.shape[0]
        self.multilabel = multilabel
        if multilabel:
            self.targets_t = targets.float().T.contiguous()  # (C, N)
            self.n_outputs = targets.shape[1]
        else:
            labels = targets.long()
            self.n_outputs = int(n_outputs if n_outputs is not None else int(labels.max()) + 1)
            if labels.min() < 0 or labels.max() >= self.n_outputs:
                raise ValueError(
                    f"class labels must lie in [0, {self.n_outputs}), got [{int(labels.min())}, {int(labels.max())}]"
                )
            self.targets_t = F.one_hot(labels, self.n_outputs).float().T.contiguous()  # (C, N)

    def loss_and_grad(self, weight_t: Tensor, bias: Tensor, l2: float) -> tuple[Tensor, Tensor, Tensor]:
        """Objective and its gradients for ``weight_t (C, D)`` (= W^T) and ``bias (C,)``."""
        logits_t = torch.addmm(bias[:, None], weight_t, self.x_t)  # (C, N)
        if self.multilabel:
            data_loss = F.binary_cross_entropy_with_logits(logits_t, self.targets_t, reduction="sum") / self.n
            residual = torch.sigmoid(logits_t) - self.targets_t
        else:
            log_prob = torch.log_softmax(logits_t, dim=0)
            data_loss = -(log_prob * self.targets_t).sum() / self.n
            residual = log_prob.exp() - self.targets_t
        residual /= self.n
        loss = data_loss + 0.5 * l2 * weight_t.pow(2).sum()
        return loss, residual @ self.x + l2 * weight_t, residual.sum(1)

    def fit(self, l2: float, max_iter: int = 60, init: LinearModel | None = None, threads: int | None = 1) -> LinearModel:
        """L-BFGS (strong Wolfe line search) from zero or from ``init`` (warm start along a grid)."""
        weight_t = torch.zeros(self.n_outputs, self.x.shape[1]) if init is None else init.weight.T.contiguous()
        bias = torch.zeros(self.n_outputs) if init is None else init.bias.clone()
        optimizer = torch.optim.LBFGS(
            [weight_t, bias], lr=1.0, max_iter=max_iter, history_size=10,
            tolerance_grad=1e-5, tolerance_change=1e-7, line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            loss, grad_w, grad_b = self.loss_and_grad(weight_t, bias, l2)
            weight_t.grad, bias.grad = grad_w, grad_b
            return loss

        with torch.no_grad(), torch_threads(threads):
            optimizer.step(closure)
        return LinearModel(weight_t.T.contiguous(), bias.clone())


def fit_logistic(
    x: Tensor,
    targets: Tensor,
    l2: float,
    multilabel: bool = False,
    n_outputs: int | None = None,
    max_iter: int = 60,
    init: LinearModel | None = None,
    threads: int | None = 1,
) -> LinearModel:
    """One L-BFGS fit of :class:`LogisticProblem` ``(x (N, D), targets)`` at ``l2``.

    ``threads``: see :attr:`ProbeConfig.solver_threads`.
    """
    return LogisticProblem(x, targets, multilabel, n_outputs).fit(l2, max_iter, init, threads)


def ridge_path(x: Tensor, y: Tensor, lambdas: tuple[float, ...]) -> list[LinearModel]:
    """Ridge regressions ``min |x W + b - y|^2 / N + lam |W|^2`` for every ``lam``.

    ``x (N, D)``, ``y (N, K)``. The Gram matrix of the smaller side (``D x D``,
    or ``N x N`` in dual form) is formed once in float32 and each ``lam`` is a
    float64 Cholesky solve, which is several times cheaper than an
    eigendecomposition for the handful of values a grid has.
    """
    x_mean, y_mean = x.mean(0), y.float().mean(0)
    xc, yc = x - x_mean, (y.float() - y_mean).double()
    n, d = xc.shape
    primal = d <= n
    gram = ((xc.T @ xc) if primal else (xc @ xc.T)).double() / n
    rhs = (xc.T.double() @ yc) / n if primal else yc / n
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    models = []
    for lam in lambdas:
        solution = _spd_solve(gram + lam * eye, rhs)
        w = solution if primal else xc.T.double() @ solution
        models.append(LinearModel(w.float(), (y_mean.double() - x_mean.double() @ w).float()))
    return models


def _spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a z = b`` for symmetric positive (semi)definite ``a``; least squares if it is singular."""
    factor, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b, factor)
    return torch.linalg.lstsq(a, b).solution
