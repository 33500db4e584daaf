"""A subscription whose reliability follows its publishers (`reliability: best_available`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import time
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

from ros_onnx_vision.ros.diagnostics import QosMismatch
from ros_onnx_vision.ros.qos import (has_best_available, qos, qos_mismatch_callbacks,
                                     reliability_for)

MATCH_CHECK_PERIOD = 0.5  # seconds between checks of a best_available subscription's publishers
OVERLAP_LIMIT = 2.0  # seconds the replaced subscription stays at most, while the new one matches


class MatchedSubscription:
    """A subscription whose reliability matches its publishers (`best_available`), or is forced.

    rmw resolves BEST_AVAILABLE once, when the subscription is created, from the publishers it
    knows then. With none known yet (a node that starts before its camera, or before discovery
    has finished) it picks reliable: the camera then logs an incompatible-QoS warning, and a
    best-effort camera, e.g. a simulator's, is never heard. So BEST_AVAILABLE is requested only
    when publishers are known; with none, the subscription starts best effort (compatible with
    any publisher). Either way the choice is checked against the graph every
    MATCH_CHECK_PERIOD s of steady time, and the subscription is re-created with the
    reliability the publishers call for: best effort when any of them is best effort, reliable
    when all are (a best-effort subscription to a reliable camera loses every frame of which
    UDP drops a fragment). 'best_effort' and 'reliable' are used as given, with the mismatch
    warnings.

    The switch is make-before-break: the old subscription keeps delivering until the new one
    has matched the publishers (or OVERLAP_LIMIT s), so a switch while data flows leaves no gap
    (a gap of a few results broke smoothing_node's first tracks). Meanwhile both hear the same
    samples: a message is dropped when its twin (same header stamp and frame_id) already came
    through the other subscription. Pairing twins, rather than dropping stamps that are not
    newer, keeps the publisher's own backward or repeated stamps, which smoothing_node counts.
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, callback: Callable[[Any], None],
                 reliability: str, depth: int, record: QosMismatch) -> None:
        self.node, self.msg_type, self.callback = node, msg_type, callback
        self.depth, self.record = depth, record
        self.adaptive = reliability == 'best_available' and has_best_available()
        self.topic_name: str = node.resolve_topic_name(topic)  # namespace, remapping applied
        if self.adaptive and not node.get_publishers_info_by_topic(self.topic_name):
            reliability = 'best_effort'
        self._old: Any = None  # the subscription being replaced, while the new one matches
        # While both exist: messages each delivered that the other has not heard yet, by key.
        self._unpaired: tuple[Counter, Counter] = (Counter(), Counter())
        self._side = 1  # of the newest subscription (0 or 1); the first one gets 0
        self._old_until = 0.0
        self._wanted_publishers = 0
        self.subscription = self._create(self.topic_name,
                                         qos(reliability, depth, node.get_logger()))
        self.record.reliability = self._effective() or reliability
        self._timer = node.create_timer(MATCH_CHECK_PERIOD, self.check,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME)) \
            if self.adaptive else None

    def _create(self, topic: str, profile: QoSProfile) -> Any:
        # The two subscriptions of a switch deliver from opposite sides, to pair the twins.
        side = self._side = 1 - self._side
        return self.node.create_subscription(
            self.msg_type, topic, lambda msg: self._deliver(msg, side), profile,
            event_callbacks=qos_mismatch_callbacks(self.node, topic, profile, self.record,
                                                   adaptive=self.adaptive))

    def _effective(self) -> str | None:
        """This subscription's reliability as the middleware resolved it (graph), if listed."""
        node = self.node
        for info in node.get_subscriptions_info_by_topic(self.topic_name):
            if (info.node_name, info.node_namespace) == (node.get_name(),
                                                         node.get_namespace()):
                return info.qos_profile.reliability.name.lower()
        return None

    def _deliver(self, msg: Any, side: int) -> None:
        header = getattr(msg, 'header', None)
        if self._old is not None and header is not None:
            key = (header.stamp.sec, header.stamp.nanosec, header.frame_id)
            other = self._unpaired[1 - side]
            if other[key]:
                other[key] -= 1
                return  # its twin came through the other subscription
            self._unpaired[side][key] += 1
        self.callback(msg)

    def check(self) -> None:
        """Re-subscribe when the publishers call for the other reliability."""
        if self._old is not None:
            if self.subscription.get_publisher_count() >= self._wanted_publishers or \
                    time.monotonic() > self._old_until:
                self._end_overlap()
            return
        offered = [info.qos_profile.reliability.name.lower()
                   for info in self.node.get_publishers_info_by_topic(self.topic_name)]
        wanted = reliability_for(offered)
        if wanted is None or wanted == self.record.reliability:
            return
        self._old = self.subscription
        self._old_until = time.monotonic() + OVERLAP_LIMIT
        self._wanted_publishers = len(offered)
        self.subscription = self._create(self.topic_name, qos(wanted, self.depth))
        self.record.reliability = wanted
        self.node.get_logger().info(
            f'{self.topic_name}: publishers offer {", ".join(sorted(set(offered)))}; '
            f'subscribed {wanted} (reliability best_available)')

    def _end_overlap(self) -> None:
        self.node.destroy_subscription(self._old)
        self._old = None
        for unpaired in self._unpaired:
            unpaired.clear()

    def destroy(self) -> None:
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        if self._old is not None:
            self.node.destroy_subscription(self._old)
            self._old = None
        self.node.destroy_subscription(self.subscription)
