#!/usr/bin/env python3
"""A camera driver that is not ours: a plain rclpy publisher, as usb_cam or a simulator bridge.

    .venv/bin/python -m tools.plain_camera [--topic image_raw] [--image FILE] [--size 640x480]
        [--rate 15] [--frames 75] [--reliability reliable|best_effort]
        [--transport raw|compressed] [--format 'bgr8; jpeg compressed bgr8'] [--frame-id cam]
        [--wait 20] [--go FILE]

It does none of what this package's nodes do at start: no Fast DDS profile (whatever the
environment selects applies, by default Fast DDS's own settings), no malloc tuning. It waits for
one subscriber, lets the match settle (and, with `--go`, for that file to exist: the test is
ready to count), publishes `--frames` frames at `--rate` Hz (raw Image, or
only CompressedImage on `<topic>/compressed` with `--transport compressed`), then prints one
JSON line: {"sent": [[sec, nanosec], ...], "settled": bool, "profile": ...}. The
interoperability tests start it as a subprocess with and without the profile.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import time
from typing import Any


def frame(image: str, width: int, height: int):
    import cv2
    import numpy as np
    if image:
        picture = cv2.imread(image, cv2.IMREAD_COLOR)
        if picture is None:
            raise SystemExit(f'plain_camera: cannot read {image}')
        return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def compressed_payload(picture, fmt: str) -> bytes:
    """The picture as the format string says: JPEG or PNG, BGR or (for '... rgb8') RGB."""
    import cv2
    from ros_onnx_vision.camera.compression import parse_format
    parsed = parse_format(fmt)
    pixels = picture[:, :, ::-1] if parsed.order == 'RGB' else picture
    ok, data = cv2.imencode('.png' if parsed.codec == 'png' else '.jpg', pixels)
    assert ok
    return data.tobytes()


def subscribers_settled(node: Any, publisher: Any, reliability: Any) -> bool:
    """A subscriber has matched, and every subscription on the topic has this publisher's
    reliability: a best_available subscriber that started best effort has re-subscribed (how
    long that takes depends on discovery, seconds on a loaded machine: a fixed wait lost the
    frames that went to a best-effort subscription meanwhile)."""
    if publisher.get_subscription_count() == 0:
        return False
    infos = node.get_subscriptions_info_by_topic(publisher.topic_name)
    return bool(infos) and all(info.qos_profile.reliability == reliability for info in infos)


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.plain_camera',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--topic', default='image_raw')
    parser.add_argument('--image', default='', help='picture to publish (default: noise)')
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--rate', type=float, default=15.0)
    parser.add_argument('--frames', type=int, default=75)
    parser.add_argument('--reliability', choices=('reliable', 'best_effort'),
                        default='reliable')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw')
    parser.add_argument('--format', default='bgr8; jpeg compressed bgr8')
    parser.add_argument('--frame-id', default='plain_camera')
    parser.add_argument('--wait', type=float, default=20.0, help='seconds to wait for a '
                        'subscriber with this reliability (and the --go file)')
    parser.add_argument('--go', type=Path, help='send the first frame once this file exists')
    args = parser.parse_args()

    import array
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header

    from ros_onnx_vision.ros.image_conversion import numpy_to_image

    width, height = (int(v) for v in args.size.split('x'))
    picture = frame(args.image, width, height)
    rclpy.init()
    node = rclpy.create_node('plain_camera')
    profile = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE
                         if args.reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT)
    if args.transport == 'compressed':
        publisher = node.create_publisher(CompressedImage, f'{args.topic}/compressed', profile)
        data = array.array('B', compressed_payload(picture, args.format))
    else:
        publisher = node.create_publisher(Image, args.topic, profile)
    deadline = time.monotonic() + args.wait
    while not (settled := subscribers_settled(node, publisher, profile.reliability)
               and (args.go is None or args.go.exists())) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # margin for the subscriber's side of the match
    sent = []
    start = time.monotonic()
    for i in range(args.frames):
        time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
        header = Header(frame_id=args.frame_id, stamp=node.get_clock().now().to_msg())
        if args.transport == 'compressed':
            msg = CompressedImage(header=header, format=args.format)
            msg.data = data
        else:
            msg = numpy_to_image(picture, 'bgr8', header)
        publisher.publish(msg)
        sent.append([header.stamp.sec, header.stamp.nanosec])
    time.sleep(1.0)  # reliable: let the last frames be repaired before the writer goes
    profile_file = os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE') \
        or os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or None
    print(json.dumps({'sent': sent, 'settled': settled, 'profile': profile_file}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
