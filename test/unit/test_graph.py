"""The graph description, the launch files and the parameter files agree with each other."""

from __future__ import annotations

import ast
import importlib
import logging
import re
import sys
import types

import pytest
import yaml

from ros_onnx_vision.ros.graph import CAMERA_TOPIC, node_overrides, Pipeline, pipeline, TASKS
from ros_onnx_vision.ros.parameters import (AnnotatorParameters, CameraParameters,
                                            InferenceParameters, parameter_specs,
                                            SmoothingParameters)

from conftest import REPO
from tools.demo.graph_runner import node_command

BUILTIN_PARAMETERS = {'use_sim_time'}
NODE_PARAMETERS = {'camera_node': CameraParameters, 'inference_node': InferenceParameters,
                   'smoothing_node': SmoothingParameters, 'annotator_node': AnnotatorParameters}


def spec_by_name(node: str) -> dict:
    return {spec.name: spec for spec in parameter_specs(NODE_PARAMETERS[node])}


def console_scripts() -> dict[str, str]:
    text = (REPO / 'setup.py').read_text()
    return dict(re.findall(r"'(\w+) = (ros_onnx_vision(?:\.\w+)+:main)'", text))


@pytest.mark.parametrize('task', TASKS)
def test_every_executable_is_a_console_script_with_a_main(task):
    scripts = console_scripts()
    for spec in pipeline(task, annotate=True).nodes:
        assert spec.executable in scripts, spec.executable
        module, func = scripts[spec.executable].split(':')
        assert module == f'ros_onnx_vision.ros.{spec.executable}'  # executable = module = node
        source = (REPO / (module.replace('.', '/') + '.py')).read_text()
        assert f'def {func}(' in source


@pytest.mark.parametrize('task', TASKS)
def test_parameter_file_sets_only_declared_parameters(task):
    graph = pipeline(task, annotate=True)  # the file has annotator_node's section too
    path = REPO / 'config' / graph.parameters_file
    data = yaml.safe_load(path.read_text())
    # `/**/name` keys match the node under any namespace (namespace:= of the launch files).
    assert set(data) == {f'/**/{spec.name}' for spec in graph.nodes}
    data = {key.removeprefix('/**/'): section for key, section in data.items()}
    for node, section in data.items():
        declared = spec_by_name(node)
        values = section['ros__parameters']
        unknown = set(values) - set(declared) - BUILTIN_PARAMETERS
        assert not unknown, f'{path.name}: {node} does not declare {sorted(unknown)}'
        for name, value in values.items():
            if name in declared:
                assert declared[name].check(value) is None, f'{path.name}: {node}.{name}'
                assert type(value) is type(declared[name].default) or (
                    isinstance(value, list) and isinstance(declared[name].default, list)), name
                # Defaults are written once (ros/parameters.py): a file that restated one would
                # silently keep the old value when the default changes.
                assert value != declared[name].default, (
                    f'{path.name}: {node}.{name}={value!r} restates the default')
        NODE_PARAMETERS[node](**{k: v for k, v in values.items() if k in declared})
    for node, parameters in (('smoothing_node', SmoothingParameters),
                             ('annotator_node', AnnotatorParameters)):
        task = data[node]['ros__parameters'].get('task', parameters().task)
        assert task == graph.inference_task, node


def _remapped(graph: Pipeline, topics: dict[str, set[str]]) -> dict[str, set[str]]:
    return {spec.executable: {dict(spec.remappings).get(t, t) for t in topics[spec.executable]}
            for spec in graph.nodes}


def published_topics(graph: Pipeline) -> dict[str, set[str]]:
    """Topic names each node publishes, after remapping."""
    return _remapped(graph, {
        'camera_node': {CAMERA_TOPIC, 'camera_info'},
        'inference_node': {graph.result_topic, 'label_info'},
        'smoothing_node': {graph.smoothed_topic},
        'annotator_node': {'image_annotated'}})


def subscribed_topics(graph: Pipeline) -> dict[str, set[str]]:
    return _remapped(graph, {'camera_node': set(), 'inference_node': {CAMERA_TOPIC},
                             'smoothing_node': {graph.result_topic},
                             'annotator_node': {CAMERA_TOPIC, graph.result_topic,
                                                graph.smoothed_topic}})


@pytest.mark.parametrize('task', TASKS)
@pytest.mark.parametrize('image_topic', ['', '/sim/front_camera/image'])
@pytest.mark.parametrize('annotate', [False, True])
def test_remappings_connect_every_subscription(task, image_topic, annotate):
    graph = pipeline(task, image_topic=image_topic, annotate=annotate)
    assert ('annotator_node' in {s.executable for s in graph.nodes}) == annotate
    published = set().union(*published_topics(graph).values())
    for node, topics in subscribed_topics(graph).items():
        for topic in topics:
            if node == 'inference_node' and image_topic:
                assert topic == image_topic  # attached to the external camera
                assert 'camera_node' not in {s.executable for s in graph.nodes}
            elif node == 'annotator_node' and image_topic and topic not in published:
                assert topic == image_topic  # the same external camera as inference_node
            else:
                assert topic in published, f'{node} subscribes {topic}, nobody publishes it'


def test_node_overrides_give_annotator_node_the_task_and_transport():
    graph = pipeline('digit_classification', image_topic='/cam/image', annotate=True)
    assert graph.node('annotator_node').remappings == (('image_raw', '/cam/image'),)
    overrides = node_overrides(graph, image_transport='compressed')
    assert overrides['annotator_node'] == {'task': 'classification',
                                           'image_transport': 'compressed'}
    assert overrides['inference_node'] == {'image_transport': 'compressed'}
    assert 'annotator_node' not in node_overrides(pipeline('digit_classification'))


def test_node_command_carries_name_file_remaps_and_overrides(tmp_path):
    graph = pipeline('human_detection', image_topic='/cam/image')
    spec = graph.node('inference_node')
    overrides = node_overrides(graph, model='x.yaml', use_sim_time=True)
    cmd = node_command(spec, parameters_file=tmp_path / 'p.yaml',
                       parameters=overrides['inference_node'], namespace='robot1')
    text = ' '.join(cmd)
    for part in ['--ros-args', '__node:=inference_node', '__ns:=robot1',
                 f'--params-file {tmp_path / "p.yaml"}', 'image_raw:=/cam/image',
                 "model:='x.yaml'", 'use_sim_time:=true']:
        assert part in text


# --- The launch files: real launch_ros files, executed here against recording stand-ins -----
# Only where the real launch / launch_ros are missing (a plain venv without ../shared/ros2_tools):
# these stand-ins record what the launch description builds, so the file's logic is still
# checked. Where the real ones import, test_ros2_cli.py runs the launch files with `ros2 launch`.
try:
    import launch_ros.actions  # noqa: F401
    REAL_LAUNCH = True
except ImportError:
    REAL_LAUNCH = False

class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.launch_configurations[self.name]


class _Context:
    def __init__(self, values):
        self.launch_configurations = values


@pytest.fixture
def launch_stand_ins(monkeypatch):
    if REAL_LAUNCH:
        pytest.skip('the real launch is installed: test_ros2_cli.py runs the launch files')
    modules = {
        'launch': dict(LaunchContext=_Context, LaunchDescription=_Recorded),
        'launch.actions': dict(DeclareLaunchArgument=_Recorded, OpaqueFunction=_Recorded,
                               SetEnvironmentVariable=_Recorded),
        'launch.logging': dict(get_logger=logging.getLogger),
        'launch.substitutions': dict(LaunchConfiguration=_LaunchConfiguration),
        'launch_ros': {},
        'launch_ros.actions': dict(Node=_Recorded),
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, 'ros_onnx_vision.ros.launch_description', raising=False)
    yield importlib.import_module('ros_onnx_vision.ros.launch_description')
    sys.modules.pop('ros_onnx_vision.ros.launch_description', None)


def load_launch_file(task: str) -> types.ModuleType:
    path = REPO / 'launch' / f'{task}.launch.py'
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, 'id', '') == 'generate_pipeline_launch_description']
    assert len(calls) == 1 and calls[0].args[0].value == task
    module = types.ModuleType(f'{task}_launch')
    exec(compile(path.read_text(), str(path), 'exec'), module.__dict__)  # noqa: S102
    return module


def run_launch(task: str, **arguments: str) -> tuple[dict[str, str], list[_Recorded]]:
    description = load_launch_file(task).generate_launch_description()
    actions = description.args[0]
    declared = {a.args[0]: a.kwargs['default_value'] for a in actions if 'default_value'
                in a.kwargs}
    opaque = [a for a in actions if 'function' in a.kwargs]
    assert len(opaque) == 1
    values = {**declared, **arguments}
    nodes = opaque[0].kwargs['function'](_Context(values), *opaque[0].kwargs['args'])
    return declared, nodes


@pytest.mark.parametrize('task', TASKS)
def test_launch_file_starts_the_described_graph(task, launch_stand_ins):
    declared, nodes = run_launch(task)
    assert set(declared) == {'source', 'model', 'use_sim_time', 'namespace', 'image_topic',
                             'params_file', 'rviz', 'annotate', 'annotate_confirmed',
                             'image_transport'}
    graph = pipeline(task)
    assert [n.kwargs['executable'] for n in nodes] == [s.executable for s in graph.nodes]
    for node, spec in zip(nodes, graph.nodes):
        assert node.kwargs['package'] == 'ros_onnx_vision'
        assert node.kwargs['name'] == spec.name
        params_file = node.kwargs['parameters'][0]
        assert params_file.endswith(graph.parameters_file)
        assert (REPO / 'config' / graph.parameters_file).exists()


def test_launch_arguments_reach_the_nodes(launch_stand_ins, tmp_path, monkeypatch):
    # rviz2 in the ament index (it is not installed here), so that rviz:=true adds it.
    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'rviz2').touch()
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    _, nodes = run_launch('human_detection', image_topic='/sim/cam/image_raw',
                          use_sim_time='true', namespace='robot1', rviz='true',
                          model='ssdlite_mobilenet_v2_person.yaml', annotate_confirmed='false',
                          image_transport='compressed')
    by_exe = {n.kwargs['executable']: n for n in nodes}
    assert 'camera_node' not in by_exe  # attached to the simulator's camera instead
    inference = by_exe['inference_node']
    assert inference.kwargs['remappings'] == [('image_raw', '/sim/cam/image_raw')]
    assert inference.kwargs['namespace'] == 'robot1'
    assert inference.kwargs['parameters'][1] == {
        'model': 'ssdlite_mobilenet_v2_person.yaml', 'use_sim_time': True,
        'image_transport': 'compressed'}
    assert by_exe['smoothing_node'].kwargs['parameters'][1] == {'use_sim_time': True}
    # rviz:=true shows image_annotated: annotator_node draws it, on the same camera topic.
    annotator = by_exe['annotator_node']
    assert annotator.kwargs['remappings'] == [('image_raw', '/sim/cam/image_raw')]
    assert annotator.kwargs['namespace'] == 'robot1'
    assert annotator.kwargs['parameters'][1] == {
        'task': 'detection', 'use_sim_time': True, 'annotate_confirmed': False,
        'image_transport': 'compressed'}
    rviz = by_exe['rviz2']
    rviz_config = rviz.kwargs['arguments'][1]
    assert rviz_config.endswith('ros_onnx_vision.rviz') and (REPO / 'config' /
                                                             'ros_onnx_vision.rviz').exists()


def test_launch_rejects_a_non_boolean(launch_stand_ins):
    with pytest.raises(ValueError, match='use_sim_time'):
        run_launch('digit_classification', use_sim_time='maybe')
    with pytest.raises(ValueError, match="image_transport:='theora' is not raw or compressed"):
        run_launch('digit_classification', image_transport='theora')


def test_launch_without_rviz2_starts_the_nodes_only(launch_stand_ins, tmp_path, monkeypatch):
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))  # an ament index without rviz2
    _, nodes = run_launch('human_detection', rviz='true')
    assert [n.kwargs['executable'] for n in nodes] == ['camera_node', 'inference_node',
                                                       'smoothing_node', 'annotator_node']


@pytest.mark.parametrize('annotate, nodes', [
    ('false', ['camera_node', 'inference_node', 'smoothing_node']),
    ('true', ['camera_node', 'inference_node', 'smoothing_node', 'annotator_node']),
])
def test_annotate_starts_annotator_node(launch_stand_ins, annotate, nodes):
    _, started = run_launch('digit_classification', annotate=annotate)
    assert [n.kwargs['executable'] for n in started] == nodes
    for node in started:
        assert 'annotate_confirmed' not in node.kwargs['parameters'][1]  # the file's
    with pytest.raises(ValueError, match='annotate'):
        run_launch('digit_classification', annotate='maybe')


def test_parameter_tables_have_descriptions():
    for node, parameters in NODE_PARAMETERS.items():
        for spec in parameter_specs(parameters):
            assert spec.description, f'{node}.{spec.name}'
            assert spec.check(spec.default) is None, f'{node}.{spec.name} default'


def test_the_parameter_reference_is_generated_from_the_dataclasses():
    """docs/parameters.md lists every parameter of every node as parameters.py declares it."""
    from tools import parameters_doc
    assert set(parameters_doc.NODES) == set(NODE_PARAMETERS)
    assert parameters_doc.main(['--check']) == 0, 'run python -m tools.parameters_doc'
