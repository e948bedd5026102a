"""Training: the loop, checkpoints, run directories and the Hydra-facing entry point."""
