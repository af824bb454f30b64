from . import backbones, heads  # noqa: F401  (registers modules in mmmamba.registry.MODELS)
