"""Shared fixtures: each test that touches DDS gets its own ROS domain, host-only discovery.

test/unit/ holds the fast checks of plain modules; test/integration/ the ones that start node
processes, build with colcon or run models on many frames. Everything under integration/ is
marked ``integration``, so ``tools/test.sh -m "not integration"`` runs the fast part alone.
The development tools (tools/: the process launcher, demo inputs, evaluation) are imported
from the checkout, as the tests always run from one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import itertools
import os
from pathlib import Path
import sys
import time
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / 'test' / 'data'
sys.path.insert(0, str(REPO / 'tools'))

from ros_onnx_vision.ros.environment import apply_fastdds_profile, node_environment  # noqa: E402

# The test process itself is a DDS participant too: same profile and discovery rules as the
# node processes it talks to. Set before rclpy creates anything.
apply_fastdds_profile()
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

_domains = itertools.count()


@pytest.fixture
def ros_domain() -> int:
    """A domain id unlikely to be used by a concurrent run (pid-based) or an earlier test."""
    return 1 + (os.getpid() * 13 + next(_domains)) % 100


@pytest.fixture
def node_env(ros_domain: int) -> dict[str, str]:
    return node_environment(ros_domain)


class RosProbe:
    """An rclpy node in the test process that subscribes, publishes and waits."""

    def __init__(self, domain: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(f'test_probe_{os.getpid()}', context=self.context)
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

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return condition()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


@pytest.fixture
def ros_probe(ros_domain: int) -> Iterator[RosProbe]:
    probe = RosProbe(ros_domain)
    yield probe
    probe.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if 'integration' in item.path.parts:
            item.add_marker(pytest.mark.integration)
