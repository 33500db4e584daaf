"""launch_ros description of a pipeline, shared by the files in launch/.

Built from `graph.pipeline` (the same description the demo and tests start), so the launch files
cannot drift from them. Imports launch/launch_ros, which exist on a ROS install only.
"""

from __future__ import annotations

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription
from ros_onnx_vision.resources import config_file
from ros_onnx_vision.ros.environment import (apply_fastdds_profile, LEGACY_PROFILE_VARIABLE,
                                             PROFILE_VARIABLE)
from ros_onnx_vision.ros.graph import node_overrides, PACKAGE, pipeline

# (name, default, description) of every launch argument.
ARGUMENTS = (
    ('source', '', "camera_node source (device, video, images, URL, bag or 'synthetic'); "
                   'empty = the parameter file\'s'),
    ('model', '', 'inference_node model card; empty = the parameter file\'s'),
    ('use_sim_time', 'false', 'Use the /clock topic (simulation or bag replay)'),
    ('namespace', '', 'Namespace for all nodes and their topics'),
    ('image_topic', '', 'Attach to this existing image topic (a simulator\'s or another '
                        'driver\'s); camera_node is then not started'),
    ('params_file', '', 'Parameter file; empty = config/<task>.yaml of this package'),
    ('rviz', 'false', 'Start rviz2 with the package\'s view of raw and annotated images'),
)
TRUE = ('true', '1', 'yes', 'on')


def _nodes(context: LaunchContext, task: str) -> list[Node]:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    for name in ('use_sim_time', 'rviz'):
        if arg(name).lower() not in TRUE + ('false', '0', 'no', 'off'):
            raise ValueError(f'launch argument {name}:={arg(name)!r} is not a boolean')
    graph = pipeline(task, image_topic=arg('image_topic'))
    sim_time = arg('use_sim_time').lower() in TRUE
    params_file = arg('params_file') or str(config_file(graph.parameters_file))
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f'launch argument params_file: {params_file} does not exist')
    overrides = node_overrides(graph, source=arg('source'), model=arg('model'),
                               use_sim_time=sim_time)
    actions = [
        Node(package=PACKAGE, executable=spec.executable, name=spec.name,
             namespace=arg('namespace'), parameters=[params_file, overrides[spec.executable]],
             remappings=list(spec.remappings), output='screen', emulate_tty=True)
        for spec in graph.nodes
    ]
    if arg('rviz').lower() in TRUE:
        actions.append(Node(package='rviz2', executable='rviz2', name='rviz2',
                            namespace=arg('namespace'),
                            arguments=['-d', str(config_file('ros_onnx_vision.rviz'))],
                            parameters=[{'use_sim_time': sim_time}]))
    return actions


def generate_pipeline_launch_description(task: str) -> LaunchDescription:
    """Launch arguments, the shipped Fast DDS profile (unless one is set), and the nodes."""
    pipeline(task)  # unknown task: fail at once
    actions: list = [DeclareLaunchArgument(name, default_value=default, description=text)
                     for name, default, text in ARGUMENTS]
    profile_env: dict[str, str] = dict(os.environ)
    apply_fastdds_profile(profile_env)
    for variable in (PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE):
        if not os.environ.get(variable):
            actions.append(SetEnvironmentVariable(variable, profile_env[variable]))
    actions.append(OpaqueFunction(function=_nodes, args=[task]))
    return LaunchDescription(actions)
