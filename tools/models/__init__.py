"""One-off model tools: the converters (convert_*.sh, with their helpers onnx_io_rename,
onnx_keep_class, tfjs_fill_attrs), train_digits and record_reference. Run the helpers as
``python -m tools.models.<x>`` from the repository root (the converters set PYTHONPATH)."""
