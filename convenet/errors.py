"""Errors shared across modules, kept apart so importing them never pulls in TensorFlow."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had here (package not installed, download failed)."""
