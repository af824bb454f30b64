"""Necks of mmmamba, registered in ``mmmamba.registry.MODELS``."""
from .simple_feature_pyramid import SimpleFeaturePyramid

__all__ = ['SimpleFeaturePyramid']
