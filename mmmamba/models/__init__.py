from . import backbones, classifiers, heads, necks, selfsup  # noqa: F401  (registers modules in mmmamba.registry.MODELS)
