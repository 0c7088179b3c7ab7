"""LeaP-T: learning from peers for reasoning models (shared CLI and config helpers)."""

__version__ = "0.1.0"
