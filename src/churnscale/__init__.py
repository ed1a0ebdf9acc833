"""churnscale: customer churn prediction at any scale."""

from churnscale.exceptions import ChurnscaleError
from churnscale.version import __version__

__all__ = ["ChurnscaleError", "__version__"]
