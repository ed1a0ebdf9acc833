"""Customer value: buy-till-you-die models (BG/NBD, Gamma-Gamma) on frequency, recency, age."""

from churnscale.value.bgnbd import BgNbd, GammaGamma
from churnscale.value.rfm import Rfm, rfm_of

__all__ = ["BgNbd", "GammaGamma", "Rfm", "rfm_of"]
