"""rootfree: reproducible experiments with square-root-free adaptive optimizers."""

__version__ = "0.1.0"
