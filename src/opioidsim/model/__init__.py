"""Mechanism modules (one file per mechanism) and their composition."""
from .base import Module, State
from .model import Model, default_model

__all__ = ["Model", "Module", "State", "default_model"]
