"""QoS of the nodes' topics: keep-last profiles, the best_available rule, mismatch reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, qos_policy_name_from_kind, QoSProfile, ReliabilityPolicy

from ros_onnx_vision.ros.diagnostics import qos_mismatch_message, QosMismatch


def has_best_available() -> bool:
    """Whether this distro's rclpy has BEST_AVAILABLE reliability (Iron and later; not Humble)."""
    return hasattr(ReliabilityPolicy, 'BEST_AVAILABLE')


_fallback_logged = False


def qos(reliability: str, depth: int, logger: Any = None) -> QoSProfile:
    """Keep-last QoS: reliability 'best_available', 'best_effort' or 'reliable'.

    'best_available' lets the middleware match the publishers (subscriptions only). Where the
    distro lacks it (Humble) it falls back to best effort, which `logger` is told once.
    """
    global _fallback_logged
    if reliability == 'best_available' and has_best_available():
        policy = ReliabilityPolicy.BEST_AVAILABLE
    elif reliability == 'reliable':
        policy = ReliabilityPolicy.RELIABLE
    else:
        policy = ReliabilityPolicy.BEST_EFFORT
        if reliability == 'best_available' and logger is not None and not _fallback_logged:
            _fallback_logged = True
            logger.warning('reliability best_available: this ROS distro has no BEST_AVAILABLE '
                           'QoS (Humble); subscribing best effort. A reliable camera then loses '
                           'the frames UDP drops: set reliability:=reliable for one')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


def reliability_for(offered: Iterable[str]) -> str | None:
    """What BEST_AVAILABLE picks for these publishers' reliabilities: best_effort when any is
    best effort (a reliable subscription would hear nothing from it), reliable when all are;
    None when there are none (keep what is there)."""
    offered = set(offered)
    if not offered:
        return None
    return 'best_effort' if 'best_effort' in offered else 'reliable'


def qos_mismatch_callbacks(node: Node, topic: str, requested: QoSProfile,
                           record: QosMismatch, *,
                           adaptive: bool = False) -> SubscriptionEventCallbacks:
    """Event callbacks that log an incompatible publisher QoS clearly and count it in `record`.

    The node's `reliability` parameter sets the subscription's reliability, hence the advice.
    `adaptive`: the reliability follows the publishers (MatchedSubscription), so a reliability
    mismatch is transient (it re-subscribes) and is not reported; other policies still are.
    """
    wanted = {'RELIABILITY': requested.reliability.name.lower(),
              'DURABILITY': requested.durability.name.lower()}

    def on_incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        if adaptive and policy == 'RELIABILITY':
            node.get_logger().debug(f'{topic}: reliability mismatch; re-subscribing')
            return
        message = qos_mismatch_message(topic, policy, wanted, {'RELIABILITY': 'reliability'})
        if policy == 'RELIABILITY':
            message += ' (or best_available, the default, which follows the publishers)'
        record.record(message, info.total_count)
        node.get_logger().warning(message)

    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)
