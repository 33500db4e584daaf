"""ONNX-model computer vision for ROS 2: camera, inference and smoothing nodes."""
