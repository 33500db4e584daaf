"""human detection: camera_node -> inference_node -> smoothing_node.

    ros2 launch ros_onnx_vision human_detection.launch.py [source:=...] [image_topic:=...]
        [use_sim_time:=true] [namespace:=...] [model:=...] [params_file:=...] [rviz:=true]

The graph comes from ros_onnx_vision.ros.graph, shared with the demo and the tests.
"""

from ros_onnx_vision.ros.launch_description import generate_pipeline_launch_description


def generate_launch_description():
    return generate_pipeline_launch_description('human_detection')
