"""The demo (``python -m tools.demo``, or tools/demo.sh): the three node processes on an
embedded input. ``inputs`` makes the inputs, ``report`` the outputs; ``graph_runner`` starts
node processes (also used by the tests, the benchmark and the soak run)."""
