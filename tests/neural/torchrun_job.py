"""One rank of a torchrun job for test_torchrun.py: ``fit_mlp`` on a dataset with TINY params;
rank 0 writes the weights and the shard reports to OUT (the other ranks write nothing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from churnscale.neural import fit_mlp
from churnscale.neural.launch import torchrun_rank

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY

torch.set_num_threads(1)
dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
result = fit_mlp(dataset, params=TINY)
launched = torchrun_rank()
assert launched is not None, "run me under torchrun"
if launched.leads:
    assert result is not None
    state = {k: v.contiguous() for k, v in result.model.network.state_dict().items()}
    save_file(state, str(out / "weights.safetensors"))
    (out / "shards.json").write_text(json.dumps(result.shards))
    (out / "history.json").write_text(json.dumps(result.history))
else:
    assert result is None
    (out / f"follower-{launched.rank}.done").write_text("")
