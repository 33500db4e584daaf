"""The benchmark suite (``python -m tools.bench``) and its parts, each runnable alone:
``python -m tools.bench.camera``, ``.inference``, ``.pipeline``, ``.remote``, ``.transport``.
``tools.bench.report`` evaluates the targets and writes the report."""
