"""Dynamic Weight Average (Liu, Johns & Davison, MTAN, CVPR 2019): the alpha of PCL's contrastive terms."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from pclkit.losses._checks import check_temperature


class DynamicWeightAverage:
    """Dynamic Weight Average (Liu, Johns & Davison, MTAN, CVPR 2019, Eq. 7).

    With per-epoch mean losses L_k(t):

        w_k(t-1) = L_k(t-1) / L_k(t-2),
        alpha_k(t) = K * exp(w_k(t-1) / T) / sum_j exp(w_j(t-1) / T),

    K = ``num_losses``, T = ``temperature``; alpha = 1 for the first two epochs
    (fewer than two epochs of history). Call :meth:`update` once at the end of
    each epoch with that epoch's mean losses; read :attr:`weights` during the
    next epoch. PCL weights (L_pose, L_face) with K = 2, T = 2.
    """

    def __init__(self, num_losses: int = 2, temperature: float = 2.0) -> None:
        if num_losses < 1:
            raise ValueError(f"num_losses must be >= 1, got {num_losses}")
        check_temperature(temperature)
        self.num_losses = int(num_losses)
        self.temperature = float(temperature)
        self._history: list[list[float]] = []  # last two epochs' mean losses, oldest first

    def update(self, epoch_mean_losses: Sequence[float] | Tensor) -> None:
        """Record one epoch's mean losses ((K,) sequence or tensor, all finite and > 0)."""
        values = [float(v) for v in (epoch_mean_losses.detach().flatten().tolist()
                                     if isinstance(epoch_mean_losses, Tensor) else epoch_mean_losses)]
        if len(values) != self.num_losses:
            raise ValueError(f"expected {self.num_losses} epoch mean losses, got {len(values)}")
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"epoch mean losses must be finite and > 0 for DWA ratios, got {values}")
        self._history = (self._history + [values])[-2:]

    @property
    def weights(self) -> Tensor:
        """(K,) float32 tensor alpha_k; ones until two epochs were recorded."""
        if len(self._history) < 2:
            return torch.ones(self.num_losses)
        previous, before = torch.tensor(self._history[1]), torch.tensor(self._history[0])
        ratios = previous / before
        return self.num_losses * torch.softmax(ratios / self.temperature, dim=0)

    def state_dict(self) -> dict[str, object]:
        """Plain ints/floats/tensor: loadable with ``torch.load(weights_only=True)``."""
        history = torch.tensor(self._history, dtype=torch.float64).reshape(-1, self.num_losses)
        return {"num_losses": self.num_losses, "temperature": self.temperature, "history": history}

    def load_state_dict(self, state: dict[str, object]) -> None:
        missing = {"num_losses", "temperature", "history"} - set(state)
        if missing:
            raise KeyError(f"DWA state is missing keys {sorted(missing)}; has {sorted(state)}")
        if int(state["num_losses"]) != self.num_losses:
            raise ValueError(f"DWA state has {state['num_losses']} losses, this instance {self.num_losses}")
        self.temperature = float(state["temperature"])
        history = torch.as_tensor(state["history"], dtype=torch.float64).reshape(-1, self.num_losses)
        self._history = history.tolist()[-2:]

    def __repr__(self) -> str:
        return (f"DynamicWeightAverage(num_losses={self.num_losses}, temperature={self.temperature}, "
                f"history={self._history}, weights={self.weights.tolist()})")
