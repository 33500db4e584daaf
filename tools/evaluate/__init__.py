"""Accuracy evaluations: ``people`` (labelled images, detection matching; used by the tests and
the optimiser) and ``video`` (``python -m tools.evaluate.video``: tracked video, shaken copies)."""
