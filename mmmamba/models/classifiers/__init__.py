from .linear_probe import LinearProbeClassifier

__all__ = ['LinearProbeClassifier']
