"""The package's runtime command without ROS: `python -m ros_onnx_vision infer`."""
