"""cae-mlp's hooks under DistributedDataParallel's process group: two CPU processes (gloo)
that see different images end with the same autoencoder and the same pruned network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        from ferdata.models import get_model
        from ferdata_plugins.cae_mlp import CaeMlp

        torch.manual_seed(0)  # the same initial network on both ranks, as DDP requires
        model = CaeMlp(3, input_size=32, kernel_size=3, stride=1, regularizer="prune", hidden=8)
        with torch.no_grad():  # a redundant pair for the pruning to find
            model.hidden.weight[1] = model.hidden.weight[0]
            model.hidden.bias[1] = model.hidden.bias[0]
        g = torch.Generator().manual_seed(100 + rank)  # each rank its own images
        x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
        plugin = get_model("cae-mlp")
        plugin.pretrain(model, [(x,)], torch.device("cpu"), pretrain_epochs=2, pretrain_lr=0.05)
        model.train()
        model(torch.rand(24, 3, 32, 32, generator=g) * 2 - 1)
        metrics = plugin.epoch_end(model, 0, prune_after=0, prune_min_samples=8)
        torch.save({"state": model.state_dict(), "metrics": metrics}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_agree_after_pretraining_and_pruning(tmp_path):
    # spawn, not fork: this process may already have run torch ops, and a child forked after
    # that can hang in its first convolution (OpenMP's thread pool does not survive fork)
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        if not key.startswith("standardise."):  # buffers: DDP broadcasts them at every forward
            assert torch.equal(a["state"][key], b["state"][key]), key
    assert a["state"]["unit_mask"].sum() < 8  # the planted pair was pruned
