"""Building blocks of the prediction service: routing, security and admission limits."""
