"""L_face: SimCLR's NT-Xent (Chen et al., ICML 2020, Eq. 1), the face contrastive loss of PCL.

Computed in float32 even under autocast: bf16 has an 8-bit mantissa, and
logits divided by tau = 0.07 lose too much precision in log-sum-exp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pclkit.losses._checks import (
    autocast_off,
    check_matrix,
    check_same_shape,
    check_temperature,
    unit_rows_fp32,
)


def nt_xent(z_a: Tensor, z_b: Tensor, temperature: float = 0.07) -> Tensor:
    """SimCLR NT-Xent loss (Chen et al., ICML 2020, Eq. 1), the paper's L_face.

    The 2B rows ``z = [z_a; z_b]`` are L2-normalised; for row k with positive
    k' (its other view)

        l(k) = -log( exp(sim(z_k, z_k') / tau) / sum_{m != k} exp(sim(z_k, z_m) / tau) ),

    and the loss is the **mean over the 2B rows** -- the convention of lightly
    and solo-learn. The original TF SimCLR code sums the two directions and
    averages over B only, i.e. reports 2x this value.

    Args:
        z_a, z_b: (B, D) projections of the two views; row i of each is a pair.
        temperature: tau (0.07 in the PCL reference code).

    Returns:
        scalar float32 loss. Identical embeddings everywhere give
        ``log(2B - 1)`` (the positive is one of 2B-1 equally likely rows).
    """
    check_matrix("z_a", z_a)
    check_matrix("z_b", z_b)
    check_same_shape("z_a", z_a, "z_b", z_b)
    check_temperature(temperature)
    batch = z_a.shape[0]
    with autocast_off(z_a):
        z = unit_rows_fp32(torch.cat([z_a, z_b], dim=0))  # (2B, D)
        logits = z @ z.T / temperature  # (2B, 2B)
        # a row is never its own negative
        self_mask = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        rows = torch.arange(2 * batch, device=z.device)
        positive_of_row = (rows + batch) % (2 * batch)
        return F.cross_entropy(logits, positive_of_row)
