"""Development tools of the source checkout: the demo, the benchmark suite, the model optimiser,
evaluations and the helpers the tests share.

Run them from the repository root as ``python -m tools.<x>`` (e.g. ``python -m tools.demo``);
they import ``ros_onnx_vision`` from the checkout. Not installed with the package.
"""
