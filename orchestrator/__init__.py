"""The write side and the decider of niyantra."""

__version__ = "0.1.0"
