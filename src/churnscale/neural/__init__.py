"""The neural churn model: a PyTorch MLP trained data-parallel (DDP: NCCL on GPUs, gloo on CPUs).

Importing this package imports torch.
"""

from churnscale.model.mlp import MlpModel
from churnscale.neural.compress import compress
from churnscale.neural.params import MlpParams
from churnscale.neural.training import MlpTrainResult, fit_mlp, train_mlp

__all__ = ["MlpModel", "MlpParams", "MlpTrainResult", "compress", "fit_mlp", "train_mlp"]
