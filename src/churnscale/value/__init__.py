"""Customer value: buy-till-you-die models (BG/NBD, Gamma-Gamma) on frequency, recency, age."""

from churnscale.value.bgnbd import BgNbd, GammaGamma
from churnscale.value.boosted import BoostedBgNbd, out_of_time
from churnscale.value.rfm import Rfm, rfm_of

__all__ = ["BgNbd", "BoostedBgNbd", "GammaGamma", "Rfm", "out_of_time", "rfm_of"]
