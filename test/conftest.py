"""Shared fixtures: each test that touches DDS gets its own ROS domain, host-only discovery.

test/unit/ holds the fast checks of plain modules; test/integration/ the ones that start node
processes, build with colcon or run models on many frames. Everything under integration/ is
marked ``integration``, so ``tools/test.sh -m "not integration"`` runs the fast part alone.
The development tools (the `tools` package: the process launcher, the rclpy probe, demo inputs,
evaluation) are imported from the checkout, as the tests always run from one: setup.cfg's
``pythonpath = .`` puts the repository root on the path.
"""

from __future__ import annotations

from collections.abc import Iterator
import itertools
import os
from pathlib import Path
import re

import pytest

from tools.demo.graph_runner import node_environment
from tools.ros_probe import host_only_participant, RosProbe

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / 'test' / 'data'

# The test process itself is a DDS participant too: same profile and discovery rules as the
# node processes it talks to. Set before rclpy creates anything.
host_only_participant()

_domains = itertools.count()

# A node's first log line about its input: '... newest frame of /image_raw (best_effort)'
# (inference_node), 'smoothing /detections (reliable) -> ...' (smoothing_node).
_STARTED_RELIABILITY = re.compile(r'(?:newest frame of|smoothing) \S+ \((\w+)\)')


def reliability_settled(log: str) -> bool:
    """Whether a best_available input subscription, as its node's log tells, is final.

    Subscribed reliable at once (the publisher was known), or best effort first and then
    switched. Until then, and until both ends have discovered each other, a single message can
    be lost: a sample reaches only the readers that already know its writer, and discovery
    finishes on the two sides separately."""
    started = _STARTED_RELIABILITY.search(log)
    return 'publishers offer' in log or (started is not None and started.group(1) == 'reliable')


@pytest.fixture
def ros_domain() -> int:
    """A domain id unlikely to be used by a concurrent run (pid-based) or an earlier test."""
    return 1 + (os.getpid() * 13 + next(_domains)) % 100


@pytest.fixture
def node_env(ros_domain: int) -> dict[str, str]:
    return node_environment(ros_domain)


@pytest.fixture
def ros_probe(ros_domain: int) -> Iterator[RosProbe]:
    probe = RosProbe(ros_domain)
    yield probe
    probe.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if 'integration' in item.path.parts:
            item.add_marker(pytest.mark.integration)


def node_logs(folder: Path, *names: str) -> str:
    """The last 3000 characters of each node's log in `folder` (<name>.log), for assertion
    messages."""
    return '\n'.join(f'--- {n}\n{(folder / (n + ".log")).read_text()[-3000:]}' for n in names
                     if (folder / (n + '.log')).exists())
