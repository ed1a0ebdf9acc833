"""Model training: local out-of-core, distributed, incremental."""
