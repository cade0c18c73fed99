"""The behaviour layer: a batched agent that decides, and the animal paradigms it is placed in
(self-administration, progressive ratio, extinction, reinstatement, place conditioning)."""
from .runner import simulate_paradigm

__all__ = ["simulate_paradigm"]
