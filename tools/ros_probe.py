"""An rclpy node inside a test or tool process, to watch and drive the node processes.

The tests, the demo, the benchmarks and the soak each start the nodes as processes and talk to
them from their own process. Each probe has its own rclpy Context (so several can live side by
side, on their own ROS domain, and shut down cleanly), one node and a SingleThreadedExecutor
that only the caller spins.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import time
from typing import Any


def host_only_participant() -> None:
    """This process as DDS participant: the nodes' Fast DDS profile, host-only discovery.

    Call it before rclpy creates anything: Fast DDS reads both once per process.
    """
    from ros_onnx_vision.ros.dds_profile import apply_fastdds_profile
    apply_fastdds_profile()
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


class RosProbe:
    """An rclpy node on its own Context that subscribes, publishes and waits.

    `domain` None keeps ROS_DOMAIN_ID's domain; `step` is the longest one spin_once waits.
    """

    def __init__(self, domain: int | None, name: str | None = None, *,
                 step: float = 0.05) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.step = step
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name or f'test_probe_{os.getpid()}', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.messages: dict[str, list[tuple[float, Any]]] = {}
        self.subscriptions: dict[str, Any] = {}

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> list[tuple[float, Any]]:
        """Collect (receive time, message) of `topic` into the returned list."""
        received: list[tuple[float, Any]] = self.messages.setdefault(topic, [])
        self.subscriptions[topic] = self.node.create_subscription(
            msg_type, topic, lambda msg: received.append((time.monotonic(), msg)), qos)
        return received

    def spin_once(self) -> None:
        self.executor.spin_once(timeout_sec=self.step)

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Spin until `condition()` holds or `timeout` seconds pass; the condition's value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            self.spin_once()
        return condition()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
