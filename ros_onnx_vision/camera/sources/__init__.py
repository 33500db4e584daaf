"""One module per kind of frame source, on the shared contract in ``base``.

``camera.frame_sources`` opens them (`open_source`) and re-exports the contract.
"""
