"""Training machinery: hooks (and optimizer constructors) registered in ``mmmamba.registry``."""
from .hooks import EvalProgressBarHook, InputCheckHook

__all__ = ['InputCheckHook', 'EvalProgressBarHook']
