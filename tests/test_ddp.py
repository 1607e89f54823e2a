"""Data parallelism on CPU with 2 gloo ranks (torch.multiprocessing.spawn).

* all_gather_with_grad: the gathered batch has world*B rows in rank order and
  each rank receives the summed gradient of its own rows;
* one PCL step on 2 ranks x B/2 gives the same loss terms and (DDP-averaged)
  gradients as one rank on B. BatchNorm runs in eval mode here: in training
  mode each rank normalises over its own B/2 rows (gloo/CPU has no
  SyncBatchNorm), which changes the function itself, not the data parallelism
  under test;
* the trainer under a torchrun-style environment: only rank 0 writes, and the
  ranks end with identical weights.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from ddp_support import save_ddp_step

from pclkit.config import resolve_config
from pclkit.distributed import all_gather_with_grad
from pclkit.methods import get_method
from pclkit.models import build_model
from pclkit.objective import PretrainObjective
from pclkit.views import ViewBuilder

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")

WORLD = 2
ROWS, DIM = 3, 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)


# ---------------------------------------------------------------------------
# gather with gradients


def _gather_check(rank: int, out_dir: str) -> None:
    local = torch.full((ROWS, DIM), float(rank + 1), requires_grad=True)
    gathered = all_gather_with_grad(local)
    # a different loss on every rank: weights depend on the rank
    weights = torch.arange(WORLD * ROWS * DIM, dtype=torch.float32).view(WORLD * ROWS, DIM) * (rank + 1)
    (gathered * weights).sum().backward()
    torch.save({"gathered": gathered.detach(), "grad": local.grad}, Path(out_dir) / f"gather_{rank}.pt")


def _worker(rank: int, port: int, out_dir: str) -> None:
    """Both collective checks in one spawn (process start-up dominates the test time)."""
    _join(rank, port)
    try:
        _gather_check(rank, out_dir)
        _step_check(rank, out_dir)
        # both ranks done with their collectives before either tears gloo down (a rank that tore down
        # while the other was still sending aborted once in a full suite run: "terminate called
        # without an active exception")
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def collective_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out_dir)), nprocs=WORLD, join=True)
    return out_dir


def test_all_gather_with_grad_returns_all_rows_and_sums_gradients(collective_results):
    tmp_path = collective_results
    base = torch.arange(WORLD * ROWS * DIM, dtype=torch.float32).view(WORLD * ROWS, DIM)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"gather_{rank}.pt", weights_only=True)
        assert got["gathered"].shape == (WORLD * ROWS, DIM)
        for owner in range(WORLD):  # rows in rank order
            assert torch.all(got["gathered"][owner * ROWS : (owner + 1) * ROWS] == owner + 1)
        # d/d(local) of sum_r sum(gathered * base * (r+1)) = base[own rows] * sum_r (r+1)
        expected = base[rank * ROWS : (rank + 1) * ROWS] * sum(r + 1 for r in range(WORLD))
        assert torch.equal(got["grad"], expected)


def test_all_gather_without_process_group_is_identity():
    x = torch.randn(ROWS, DIM)
    assert all_gather_with_grad(x) is x


# ---------------------------------------------------------------------------
# one step: 2 ranks x B/2 == 1 rank x B


def _step_config():
    return resolve_config("smoke", ["runtime.precision=fp32", "views.num_negatives=3", "model.width=4",
                                    "model.image_size=16", "model.decoder_width=16"])


def _step_inputs(batch: int = 8):
    """Model and views of one step, identical in every process (fixed seeds)."""
    config = _step_config()
    torch.manual_seed(0)
    model = build_model(config.model)
    images = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    views = ViewBuilder(config).build(images, torch.Generator().manual_seed(2), ("face", "pose", "recon"))
    return config, model, views


WEIGHTS = {"alpha_pose": 0.7, "alpha_face": 1.3}


def _loss_and_grads(model, config, views):
    terms = PretrainObjective(model, get_method(config.method)(config))(views, WEIGHTS, None)
    terms["loss"].backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in terms.items()}, grads


def _step_check(rank: int, out_dir: str) -> None:
    config, model, views = _step_inputs()
    model.eval()  # BatchNorm with running statistics: see the module docstring
    objective = PretrainObjective(model, get_method(config.method)(config))
    save_ddp_step(objective, model, views, WEIGHTS, rank, WORLD, out_dir)


def test_two_ranks_on_half_batches_match_one_rank_on_the_whole_batch(collective_results):
    tmp_path = collective_results
    config, model, views = _step_inputs()
    model.eval()
    reference_terms, reference_grads = _loss_and_grads(model, config, views)
    assert set(reference_terms) == {"dis", "orth", "pose", "face", "loss"}
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"step_{rank}.pt", weights_only=True)
        for name, value in reference_terms.items():
            torch.testing.assert_close(got["terms"][name], value, rtol=1e-5, atol=1e-6, msg=f"L_{name}")
        assert set(got["grads"]) == set(reference_grads)
        for name, grad in reference_grads.items():
            torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


# ---------------------------------------------------------------------------
# the trainer under torchrun-style environment variables


def _trainer_worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pclkit import distributed
    from pclkit.checkpoint import model_state
    from pclkit.trainer import Trainer

    config = resolve_config("smoke", ["data.n=32", "optim.epochs=1", "model.width=4", "runtime.progress=false",
                                      "runtime.snapshot_every=0"])
    try:
        trainer = Trainer(config, Path(out_dir) / "run")
        assert trainer.dist.world_size == WORLD and trainer.dist.rank == rank
        trainer.fit()
        torch.save(model_state(trainer.model), Path(out_dir) / f"weights_{rank}.pt")
    finally:
        distributed.shutdown()


def test_trainer_runs_data_parallel_with_rank_zero_io(tmp_path):
    mp.spawn(_trainer_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    run = tmp_path / "run"
    assert (run / "last.pt").is_file() and (run / "config.yaml").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    steps = [line for line in lines if '"kind": "step"' in line]
    assert len(steps) == 2  # 32 images / batch 16, written once (rank 0 only)
    w0 = torch.load(tmp_path / "weights_0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights_1.pt", weights_only=True)
    for name in w0:
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # BatchNorm buffers are per rank (broadcast from rank 0 at each forward)
        assert torch.equal(w0[name], w1[name]), name
