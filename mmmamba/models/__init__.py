from . import backbones, heads, necks  # noqa: F401  (registers modules in mmmamba.registry.MODELS)
