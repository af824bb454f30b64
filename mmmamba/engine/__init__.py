"""Training machinery registered in ``mmmamba.registry``: hooks (``HOOKS``) and the layer-wise
learning-rate decay constructor (``OPTIM_WRAPPER_CONSTRUCTORS``)."""
from .hooks import EvalProgressBarHook, InputCheckHook
from .optimizers import LayerDecayOptimWrapperConstructor

__all__ = ['InputCheckHook', 'EvalProgressBarHook', 'LayerDecayOptimWrapperConstructor']
