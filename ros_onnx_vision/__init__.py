"""ONNX-model computer vision for ROS 2: camera, inference and smoothing, one stage per folder.

camera/, inference/ and smoothing/ are plain Python (no rclpy) and can be used and tested
without ROS; ros/ holds the three nodes and their glue; results.py, geometry.py and
image_encodings.py are the shapes every stage shares; cli/ is the ROS-free `infer` command.
"""
