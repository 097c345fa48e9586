"""Experiment and topology models, loading and validation messages."""
