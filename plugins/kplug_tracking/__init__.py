"""Experiment-tracking callbacks (MLflow)."""
