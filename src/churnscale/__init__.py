"""churnscale: customer churn prediction at any scale."""

from churnscale.exceptions import ChurnscaleError

__version__ = "0.1.0"

__all__ = ["ChurnscaleError", "__version__"]
