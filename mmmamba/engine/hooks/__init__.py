from .input_check_hook import InputCheckHook

__all__ = ['InputCheckHook']
