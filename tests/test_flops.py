"""FLOP counting and the part timer behind `python -m pclkit bench` (behaviour, not speed)."""

from __future__ import annotations

import torch
from torch import nn

from pclkit.flops import PARTS, PartTimer, count_step_flops, measure_matmul_peak, timed_modules


class Encoder(nn.Module):
    """A container whose pieces the model calls one by one, as BranchedEncoder."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(8, 16, bias=False)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.face_head = nn.Linear(16, 4, bias=False)
        self.decoder = nn.Linear(16, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.encoder.trunk(x)
        return self.face_head(feat).pow(2).mean() + (self.decoder(feat) - x).abs().mean()


def test_timed_modules_list_the_encoder_pieces_decoder_and_heads():
    assert [(path, part) for path, _, part in timed_modules(Toy())] == [
        ("encoder.trunk", "encoder"), ("face_head", "heads"), ("decoder", "decoder")]


def test_step_flops_match_the_matmul_count_of_forward_and_backward():
    model, batch = Toy(), 5
    x = torch.randn(batch, 8)
    # forward 2*B*in*out per Linear; backward: the weight gradient (same count) and the input
    # gradient (same count), except for the trunk, whose input needs no gradient
    trunk, head, decoder = 2 * batch * 8 * 16, 2 * batch * 16 * 4, 2 * batch * 16 * 8
    assert count_step_flops(lambda: model(x).backward()) == 2 * trunk + 3 * head + 3 * decoder


def test_part_timer_splits_a_step_into_parts_that_add_up():
    model = Toy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    class Views:
        def build(self, n: int) -> torch.Tensor:
            return torch.randn(n, 8)

    views = Views()
    timer = PartTimer(model, optimizer)
    with timer.attached(views, "build"):
        for _ in range(3):
            with timer.step():
                model(views.build(32)).backward()
                optimizer.step()
    assert views.build.__func__ is Views.build  # unwrapped again
    seconds = timer.mean_seconds()
    assert list(seconds) == list(PARTS) and timer.steps == 3
    assert all(value >= 0 for value in seconds.values())
    assert seconds["encoder"] > 0 and seconds["decoder"] > 0 and seconds["heads"] > 0 and seconds["optimiser"] > 0
    # the hooks are gone: another step adds nothing
    before = dict(timer.seconds)
    model(torch.randn(4, 8)).backward()
    assert timer.seconds == before


def test_matmul_peak_is_a_positive_rate():
    assert measure_matmul_peak(torch.float32, size=128, min_seconds=0.05) > 1e6
