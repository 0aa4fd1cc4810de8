"""Utilities for developers of few-shot methods."""
