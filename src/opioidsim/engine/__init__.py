"""Batched, compiled integration (`simulate`) and the per-subject reference path."""
from .core import Grid, integrate, make_grid, simulate, subject_parameters
from .reference import simulate_reference

__all__ = ["Grid", "integrate", "make_grid", "simulate", "simulate_reference", "subject_parameters"]
