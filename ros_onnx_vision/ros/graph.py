"""The node graph, described once: used by the launch files, the demo and the tests.

    camera_node --image_raw, camera_info--> inference_node --detections | classification-->
    smoothing_node --detections_smoothed | classification_smoothed-->
    (inference_node also publishes label_info)
    with annotate: annotator_node <--image_raw, results, smoothed results-- (the above)
    annotator_node --image_annotated, image_annotated/compressed-->

Plain Python, no rclpy and no launch import, so it can be checked and used anywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ros_onnx_vision.results import Task

PACKAGE = 'ros_onnx_vision'
TASKS = ('human_detection', 'digit_classification')
CAMERA_TOPIC = 'image_raw'


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: executable (= node name) and its topic remappings."""

    executable: str
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.executable


@dataclass(frozen=True)
class Pipeline:
    """The nodes of one task, the parameter file they share and the topics that connect them."""

    task: str
    inference_task: Task  # what the model does, hence the smoothing_node task and the topics
    parameters_file: str  # a file name under config/
    nodes: tuple[NodeSpec, ...] = field(default=())

    @property
    def result_topic(self) -> str:
        return self.inference_task.result_topic

    @property
    def smoothed_topic(self) -> str:
        return self.inference_task.smoothed_topic

    def node(self, executable: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.executable == executable:
                return spec
        raise KeyError(f'{executable} is not part of the {self.task} pipeline')

    def subset(self, *executables: str) -> 'Pipeline':
        """The same pipeline with only these nodes (e.g. to start the camera last)."""
        return dataclasses.replace(
            self, nodes=tuple(spec for spec in self.nodes if spec.executable in executables))


def pipeline(task: str, *, image_topic: str = '', annotate: bool = False) -> Pipeline:
    """The graph of `task`. With `image_topic` set, attach to that existing camera topic
    (a simulator's or another driver's) and leave camera_node out. With `annotate`, add
    annotator_node, which draws the results on image_annotated (for rviz or a viewer).
    """
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; expected one of {", ".join(TASKS)}')
    nodes = []
    inference_remaps: tuple[tuple[str, str], ...] = ()
    if image_topic and image_topic != CAMERA_TOPIC:
        inference_remaps = ((CAMERA_TOPIC, image_topic),)
    if not image_topic:
        nodes.append(NodeSpec('camera_node'))
    nodes.append(NodeSpec('inference_node', inference_remaps))
    nodes.append(NodeSpec('smoothing_node'))
    if annotate:
        nodes.append(NodeSpec('annotator_node', inference_remaps))  # the same camera topic
    inference_task = Task.DETECTION if task == 'human_detection' else Task.CLASSIFICATION
    return Pipeline(task=task, inference_task=inference_task, parameters_file=f'{task}.yaml',
                    nodes=tuple(nodes))


def node_overrides(pipe: Pipeline, *, source: str = '', model: str = '',
                   use_sim_time: bool = False,
                   image_transport: str = '') -> dict[str, dict[str, object]]:
    """Per-node parameters that launch arguments set on top of the parameter file.

    `image_transport` 'compressed' makes inference_node (and annotator_node) take
    `<image topic>/compressed`. annotator_node gets the pipeline's task.
    """
    overrides: dict[str, dict[str, object]] = {spec.executable: {} for spec in pipe.nodes}
    if source and 'camera_node' in overrides:
        overrides['camera_node']['source'] = source
    if model:
        overrides['inference_node']['model'] = model
    if image_transport:
        overrides['inference_node']['image_transport'] = image_transport
    if 'annotator_node' in overrides:
        overrides['annotator_node']['task'] = pipe.inference_task.value
        if image_transport:
            overrides['annotator_node']['image_transport'] = image_transport
    if use_sim_time:
        for values in overrides.values():
            values['use_sim_time'] = True
    return overrides
