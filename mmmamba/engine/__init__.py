"""Training machinery: hooks (and optimizer constructors) registered in ``mmmamba.registry``."""
from .hooks import InputCheckHook

__all__ = ['InputCheckHook']
