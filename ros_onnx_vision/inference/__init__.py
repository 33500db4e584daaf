"""The inference stage without ROS: model cards, the ONNX Runtime session and engine,
pre-processing, digit finding, decoders, post-processing and annotation.
"""
