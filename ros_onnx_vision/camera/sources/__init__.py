"""One module per kind of frame source; the shared contract is in ``camera.frame_sources``."""
