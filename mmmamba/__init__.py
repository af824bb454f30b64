"""mmmamba: state-space and gated-CNN vision backbones for mmdet, mmseg and mmpretrain."""
from .version import __version__
from .utils import compat  # noqa: F401  (applied on import; see mmmamba/utils/compat.py)
from . import analysis, engine, models, ops  # noqa: F401,E402  (registers all; errors surface)

__all__ = ['__version__']
