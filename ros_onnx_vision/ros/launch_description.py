"""launch_ros description of a pipeline, shared by the files in launch/.

Built from `graph.pipeline` (the same description the demo and tests start), so the launch files
cannot drift from them. Imports launch/launch_ros, which exist on a ROS install only.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_prefix, PackageNotFoundError
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ros_onnx_vision.resources import config_file
from ros_onnx_vision.ros.dds_profile import (apply_fastdds_profile, LEGACY_PROFILE_VARIABLE,
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
    ('rviz', 'false', 'Start rviz2 with the package\'s view of raw and annotated images '
                      '(implies annotate:=true; where rviz2 is not installed: a warning, and '
                      'the nodes without it)'),
    ('annotate', 'false', 'Start annotator_node, which draws the results on image_annotated '
                          '(and image_annotated/compressed) while someone subscribes'),
    ('annotate_confirmed', '', 'annotator_node draws confirmed results over raw ones on '
                               'image_annotated (false: raw only); empty = the parameter file\'s'),
    ('image_transport', '', 'raw or compressed: inference_node (and annotator_node) take the '
                            'camera topic, or its <topic>/compressed (JPEG/PNG, e.g. a camera '
                            'on another host); empty = the parameter file\'s'),
)
TRANSPORTS = ('', 'raw', 'compressed')
TRUE = ('true', '1', 'yes', 'on')
FALSE = ('false', '0', 'no', 'off')
RVIZ_MISSING = ('rviz:=true, but rviz2 is not installed ({reason}): starting the nodes without '
                'it. Install it (apt install ros-{distro}-rviz2) or leave out rviz:=true.')


def rviz_missing_reason() -> str | None:
    """Why rviz2 cannot be started (not in the ament index), or None when it can.

    Checked before anything starts: launch_ros would fail on the missing package only after
    starting the other nodes, and leave them running without their launch.
    """
    try:
        get_package_prefix('rviz2')
    except PackageNotFoundError:
        return "package 'rviz2' not found"
    except OSError as error:  # AMENT_PREFIX_PATH unset: no ROS environment at all
        return str(error)
    return None


def _nodes(context: LaunchContext, task: str) -> list[Node]:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    # Everything is checked before any process starts: a bad argument leaves no node behind.
    for name in ('use_sim_time', 'rviz', 'annotate', 'annotate_confirmed'):
        allowed = TRUE + FALSE + (('',) if name == 'annotate_confirmed' else ())
        if arg(name).lower() not in allowed:
            raise ValueError(f'launch argument {name}:={arg(name)!r} is not a boolean '
                             f'(expected true or false)')
    if arg('image_transport') not in TRANSPORTS:
        raise ValueError(f'launch argument image_transport:={arg("image_transport")!r} is not '
                         'raw or compressed')
    rviz = arg('rviz').lower() in TRUE
    # rviz shows image_annotated, which annotator_node draws.
    graph = pipeline(task, image_topic=arg('image_topic'),
                     annotate=rviz or arg('annotate').lower() in TRUE)
    sim_time = arg('use_sim_time').lower() in TRUE
    params_file = arg('params_file') or str(config_file(graph.parameters_file))
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f'launch argument params_file: {params_file} does not exist')
    overrides = node_overrides(graph, source=arg('source'), model=arg('model'),
                               use_sim_time=sim_time, image_transport=arg('image_transport'))
    if arg('annotate_confirmed') and 'annotator_node' in overrides:
        overrides['annotator_node']['annotate_confirmed'] = \
            arg('annotate_confirmed').lower() in TRUE
    rviz_missing = rviz_missing_reason() if rviz else None
    if rviz_missing:
        get_logger('launch').warning(RVIZ_MISSING.format(
            reason=rviz_missing, distro=os.environ.get('ROS_DISTRO') or '<distro>'))
    actions = [
        Node(package=PACKAGE, executable=spec.executable, name=spec.name,
             namespace=arg('namespace'), parameters=[params_file, overrides[spec.executable]],
             remappings=list(spec.remappings), output='screen', emulate_tty=True)
        for spec in graph.nodes
    ]
    if rviz and not rviz_missing:
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
