"""The model optimiser (``python -m tools.optimize --card CARD``): int8 and offline-optimised
variants of a model card, measured and carded. Stages: ``frames``, ``quantization``,
``evaluation``, ``report``."""
