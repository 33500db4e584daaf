"""sensor_msgs/CompressedImage payloads as image_transport's `compressed` plugin writes them.

One codec for everything that meets compressed frames: camera_node's `image_raw/compressed`
and inference_node's `image_annotated/compressed` (encoding), inference_node's compressed input
and the rosbag source (decoding). Plain functions on bytes and format strings, no ROS, so the
rules are tested without DDS.

The format string says how to read the pixels back. image_transport writes
`<raw encoding>; <jpeg|png> compressed <target>` (e.g. `bgr8; jpeg compressed bgr8`,
`rgb8; png compressed bgr8`, `mono8; jpeg compressed mono8`); older publishers write only
`jpeg` or `png`. OpenCV's decoder returns the file's channels in BGR order, and image_transport
takes them as BGR when the target starts with `bgr` (or is absent) and as RGB otherwise, so a
`compressed rgb8` payload decodes to RGB. `compressedDepth` (the depth plugin) is a different
payload (a header before the PNG) and is refused, as is anything neither JPEG nor PNG.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
import struct

import cv2
import numpy as np

from ros_onnx_vision.camera.sources.base import normalize_decoded
from ros_onnx_vision.image_encodings import UnsupportedEncoding

CODECS = ('jpeg', 'png')
COMPRESSED_SUFFIX = 'compressed'  # image_transport's topic: <image topic>/compressed


class UnsupportedCompression(UnsupportedEncoding):
    """A CompressedImage format that is never decodable here (compressedDepth, other codecs)."""


class CompressedDecodeError(ValueError):
    """One CompressedImage whose bytes do not decode (corrupt, truncated, not an image)."""


@dataclass(frozen=True)
class CompressedFormat:
    """A parsed format string: the publisher's raw encoding (may be ''), codec, pixel order."""

    raw_encoding: str
    codec: str  # 'jpeg' or 'png'
    order: str  # colour order of a 3-channel decode: 'BGR' or 'RGB'


def parse_format(fmt: str) -> CompressedFormat:
    """Read an image_transport format string; UnsupportedCompression for what is not JPEG/PNG."""
    text = fmt.strip()
    if 'compresseddepth' in text.lower():
        raise UnsupportedCompression(
            f'CompressedImage format {fmt!r} is compressedDepth (a depth image), which is not '
            'supported; subscribe to a colour or mono image')
    raw, _, rest = text.partition(';') if ';' in text else ('', '', text)
    words = rest.lower().split()
    codec = next((word for word in words if word in CODECS), '')
    if not codec and not words:
        codec = 'jpeg'  # no format at all: the oldest publishers; the decoder sniffs the bytes
    if not codec:
        raise UnsupportedCompression(
            f'unsupported CompressedImage format {fmt!r}; expected JPEG or PNG as '
            "image_transport writes it, e.g. 'bgr8; jpeg compressed bgr8' or 'png'")
    target = words[words.index(COMPRESSED_SUFFIX) + 1] if COMPRESSED_SUFFIX in words[:-1] else ''
    order = 'RGB' if target and not target.startswith(('bgr', 'mono')) else 'BGR'
    return CompressedFormat(raw_encoding=raw.strip(), codec=codec, order=order)


def image_size(data: Buffer) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding, or None when not found.

    Lets a node refuse an oversized frame before the decoder allocates it.
    """
    view = memoryview(data).cast('B')
    if len(view) >= 24 and bytes(view[:8]) == b'\x89PNG\r\n\x1a\n' and \
            bytes(view[12:16]) == b'IHDR':
        width, height = struct.unpack('>II', view[16:24])
        return width, height
    if len(view) < 4 or bytes(view[:2]) != b'\xff\xd8':
        return None
    i = 2
    while i + 9 <= len(view):
        if view[i] != 0xFF:
            return None
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = (view[i + 2] << 8) | view[i + 3]
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack('>HH', view[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


Buffer = bytes | bytearray | memoryview | np.ndarray | array.array  # CompressedImage.data


def decode(data: Buffer, fmt: str) -> tuple[np.ndarray, str]:
    """Decode a CompressedImage payload to uint8 (HxWx3 or HxW) and its order (BGR/RGB/GRAY).

    16-bit PNGs keep their high byte, alpha is dropped. Raises UnsupportedCompression for a
    format that is never decodable, CompressedDecodeError for bytes that do not decode.
    """
    parsed = parse_format(fmt)
    buffer = data.view(np.uint8).reshape(-1) if isinstance(data, np.ndarray) else \
        np.frombuffer(data, np.uint8)  # no copy of the message's array
    if buffer.size == 0:
        raise CompressedDecodeError(f'empty CompressedImage (format {fmt!r})')
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as error:
        raise CompressedDecodeError(f'cannot decode CompressedImage (format {fmt!r}): '
                                    f'{str(error).strip()}') from None
    if image is None:
        raise CompressedDecodeError(
            f'cannot decode CompressedImage data of {buffer.size} bytes as {parsed.codec} '
            f'(format {fmt!r})')
    try:
        image = normalize_decoded(image)
    except ValueError as error:
        raise CompressedDecodeError(f'CompressedImage (format {fmt!r}): {error}') from None
    return image, ('GRAY' if image.ndim == 2 else parsed.order)


def decode_bgr(data: Buffer, fmt: str) -> np.ndarray:
    """Like decode(), always BGR or mono (the camera's frame convention)."""
    image, order = decode(data, fmt)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if order == 'RGB' else image


def encode_jpeg(image: np.ndarray, encoding: str, quality: int) -> tuple[bytes, str]:
    """JPEG bytes and the image_transport format string of a bgr8, rgb8 or mono8 image."""
    if encoding == 'rgb8':
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding not in ('bgr8', 'mono8'):
        raise UnsupportedEncoding(f'cannot JPEG-encode {encoding!r}; expected bgr8, rgb8 or '
                                  'mono8')
    ok, buffer = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f'JPEG encoding of a {image.shape} {encoding} image failed')
    target = 'mono8' if encoding == 'mono8' else 'bgr8'
    return buffer.tobytes(), f'{encoding}; jpeg compressed {target}'
