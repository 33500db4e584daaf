"""Replaying an image topic of a rosbag2 recording (mcap or sqlite3) through ``rosbags``.

Decodes sensor_msgs/Image and CompressedImage without ROS, so a bag plays on any machine.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ros_onnx_vision.camera import compression
from ros_onnx_vision.camera.sources.base import (bag_files_in, Frame, FrameSource,
                                                 IMAGE_MSG_TYPES, sane_fps, SourceError,
                                                 SourceKind)
from ros_onnx_vision.image_encodings import bgr_decoding, UnsupportedEncoding


def decode_image_msg(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/msg/Image-like object to uint8 BGR or mono.

    16-bit images keep their high byte. Raises ValueError for a malformed message or an
    unsupported encoding.
    """
    dtype, channels, conversion = bgr_decoding(str(msg.encoding))
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    data = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) \
        else msg.data.view(np.uint8).reshape(-1)
    if height == 0 or width == 0 or step < row_bytes or data.size < step * height:
        raise ValueError(f'malformed {msg.encoding} image: {width}x{height}, step {step}, '
                         f'{data.size} bytes')
    rows: np.ndarray = data[:step * height].reshape(height, step)[:, :row_bytes]
    rows = np.ascontiguousarray(rows)  # copies only when rows are padded
    if itemsize > 1:
        wide = rows.view(np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<'))
        rows = (wide >> 8).astype(np.uint8)
    image = rows.reshape((height, width) if channels == 1 else (height, width, channels))
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    return image


def decode_compressed_msg(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/msg/CompressedImage (jpeg/png) to uint8 BGR or mono.

    The codec is `camera.compression`, shared with inference_node's compressed input; it
    raises UnsupportedCompression (an UnsupportedEncoding) for compressedDepth and other codecs.
    """
    return compression.decode_bgr(msg.data, str(msg.format))


class RosbagSource(FrameSource):
    """Replays an image topic of a rosbag2 recording (mcap or sqlite3) via `rosbags`.

    `Frame.stamp` is the header stamp (the recorded log time when the header stamp is zero)
    and `Frame.source_time` the recorded log time, so the node can replay with the recorded
    timing. `nominal_fps` is the topic's message count over the bag's duration. Corrupt
    messages are skipped and reported; an unsupported encoding is a SourceError.
    """

    kind = SourceKind.ROSBAG

    def __init__(self, source: str, topic: str, loop: bool):
        """Open the bag, choose the topic and decode the first frame."""
        super().__init__(source)
        try:
            from rosbags.rosbag2 import Reader
            from rosbags.typesys import get_typestore, Stores
        except ImportError as exc:  # pragma: no cover - rosbags is a declared dependency
            raise SourceError(f'cannot read rosbag {source!r}: the rosbags package is missing '
                              f'(pip install rosbags): {exc}') from exc
        path = Path(os.path.expanduser(source))
        if not path.exists():
            raise SourceError(f'rosbag {source!r} does not exist')
        if path.is_dir() and not (path / 'metadata.yaml').is_file():
            files = bag_files_in(path)
            if len(files) != 1:
                raise SourceError(f'{source!r} is not a rosbag2 directory: no metadata.yaml and '
                                  f'{len(files)} .mcap/.db3 files')
            path = files[0]
        self._loop = loop
        # Image and CompressedImage have the same layout in every ROS 2 distro.
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as exc:  # rosbags raises several unrelated types
            raise SourceError(f'cannot read rosbag {source!r}: {exc}') from exc
        try:
            self._select_topic(topic)
            self._messages = self._new_iterator()
            self._delivered_in_pass = 0
            self._ended = False
            self._pending = self._next_decoded()
            if self._pending is None:
                raise SourceError(f'rosbag {source!r}: topic {self.topic!r} has no decodable '
                                  'images')
        except BaseException:
            self.close()
            raise

    def _select_topic(self, topic: str) -> None:
        connections = self._reader.connections
        image_topics = sorted({c.topic for c in connections if c.msgtype in IMAGE_MSG_TYPES})
        if topic:
            chosen = [c for c in connections if c.topic == topic]
            if not chosen:
                raise SourceError(f'rosbag {self.name!r} has no topic {topic!r}; image topics: '
                                  f'{", ".join(image_topics) or "none"}')
            if chosen[0].msgtype not in IMAGE_MSG_TYPES:
                raise SourceError(f'rosbag {self.name!r}: topic {topic!r} is '
                                  f'{chosen[0].msgtype}, expected one of '
                                  f'{", ".join(IMAGE_MSG_TYPES)}')
        elif len(image_topics) == 1:
            topic = image_topics[0]
        elif not image_topics:
            others = ', '.join(sorted({f'{c.topic} ({c.msgtype})' for c in connections}))
            raise SourceError(f'rosbag {self.name!r} has no sensor_msgs/msg/Image or '
                              f'CompressedImage topic (topics: {others or "none"})')
        else:
            raise SourceError(f'rosbag {self.name!r} has several image topics, choose one with '
                              f'the rosbag topic parameter: {", ".join(image_topics)}')
        self.topic = topic
        self._connections = [c for c in connections if c.topic == topic]
        self.message_count = sum(c.msgcount for c in self._connections)
        duration = self._reader.duration / 1e9
        if self.message_count > 1 and duration > 0:
            self.nominal_fps = sane_fps((self.message_count - 1) / duration)

    def _new_iterator(self) -> Iterator[Any]:
        return iter(self._reader.messages(connections=self._connections))

    def _next_decoded(self) -> tuple[np.ndarray, float] | None:
        while True:
            try:
                connection, log_ns, raw = next(self._messages)
            except StopIteration:
                if not self._loop or self._delivered_in_pass == 0:
                    return None
                self._messages = self._new_iterator()
                self._delivered_in_pass = 0
                continue
            try:
                msg: Any = self._typestore.deserialize_cdr(raw, connection.msgtype)
                if connection.msgtype == IMAGE_MSG_TYPES[0]:
                    image = decode_image_msg(msg)
                else:
                    image = decode_compressed_msg(msg)
            except UnsupportedEncoding as exc:
                raise SourceError(f'rosbag {self.name!r} topic {self.topic!r}: {exc}') from None
            except Exception as exc:  # one corrupt message must not stop the replay
                self._warnings.append(f'rosbag {self.name!r} topic {self.topic!r}: skipping '
                                      f'message at {log_ns / 1e9:.9f}: {exc}')
                continue
            self._delivered_in_pass += 1
            return image, log_ns / 1e9

    def read(self) -> Frame | None:
        """Return the next recorded image; loops or returns None at the end."""
        if self._ended:
            return None
        item, self._pending = self._pending, None
        if item is None:
            item = self._next_decoded()
        if item is None:
            self._ended = True
            return None
        image, log_time = item
        return self._deliver(image, source_time=log_time)

    def close(self) -> None:
        """Close the bag."""
        reader = getattr(self, '_reader', None)
        if reader is not None and reader.is_open:
            reader.close()

    def describe(self) -> str:
        """Describe the bag and topic."""
        return (f'rosbag {self.name!r} topic {self.topic!r} ({self.message_count} messages, '
                f'{self._size_text()}, {self._fps_text()}, loop={self._loop})')
