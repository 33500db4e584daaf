"""The camera stage without ROS: frame sources of every kind, pacing on absolute deadlines,
calibration files. camera_node (ros/) publishes what these deliver.
"""
