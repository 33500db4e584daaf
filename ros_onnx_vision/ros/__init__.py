"""The ROS 2 side, kept thin: the three nodes, their parameters and diagnostics, message and
image conversion, the DDS environment, and the graph description the launch files use.
"""
