"""Experiment analysis platform: metric-hub configs in, statistics JSON out."""

__version__ = "0.1.0"
