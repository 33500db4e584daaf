"""Annotated images from separate streams: pairing images with raw and confirmed results.

Plain Python (no rclpy): `pairing.StampPairing` matches messages by header stamp for
annotator_node. The drawing itself is `ros_onnx_vision.inference.annotation`.
"""
