"""ROS image encodings, described once: what each holds, and how each becomes BGR.

The message conversion, the rosbag decoder, the camera's output and the inference input all
speak of the same encodings; this table is what they share, so that a name means one layout
everywhere. No ROS imports.
"""

from __future__ import annotations

import re

import numpy as np

# Named encodings: (numpy dtype, channels). Generic ones like 16UC3 are parsed by pattern.
NAMED_ENCODINGS: dict[str, tuple[str, int]] = {
    'rgb8': ('uint8', 3), 'bgr8': ('uint8', 3), 'rgba8': ('uint8', 4), 'bgra8': ('uint8', 4),
    'rgb16': ('uint16', 3), 'bgr16': ('uint16', 3),
    'rgba16': ('uint16', 4), 'bgra16': ('uint16', 4),
    'mono8': ('uint8', 1), 'mono16': ('uint16', 1),
    'bayer_rggb8': ('uint8', 1), 'bayer_bggr8': ('uint8', 1),
    'bayer_gbrg8': ('uint8', 1), 'bayer_grbg8': ('uint8', 1),
    'bayer_rggb16': ('uint16', 1), 'bayer_bggr16': ('uint16', 1),
    'bayer_gbrg16': ('uint16', 1), 'bayer_grbg16': ('uint16', 1),
    'yuv422': ('uint8', 2), 'uyvy': ('uint8', 2), 'yuyv': ('uint8', 2),
    'yuv422_yuy2': ('uint8', 2),
}
_GENERIC = re.compile(r'^(8|16|32|64)(U|S|F)C([1-4])$')
GENERIC_DTYPES = {('8', 'U'): 'uint8', ('8', 'S'): 'int8', ('16', 'U'): 'uint16',
                   ('16', 'S'): 'int16', ('32', 'S'): 'int32', ('32', 'F'): 'float32',
                   ('64', 'F'): 'float64'}
SUPPORTED_ENCODINGS = sorted(NAMED_ENCODINGS) + ['<8|16|32|64><U|S|F>C<1-4>, e.g. 32FC1']

# Encodings that decode to a displayable 8-bit BGR (or mono) image, and the name of the OpenCV
# conversion that does it (None: already BGR or mono). 16-bit ones keep their high byte.
# Names, not cv2 constants: this module stays importable without OpenCV (smoothing_node).
TO_BGR: dict[str, str | None] = {
    'bgr8': None, '8UC3': None, 'rgb8': 'COLOR_RGB2BGR',
    'bgra8': 'COLOR_BGRA2BGR', '8UC4': 'COLOR_BGRA2BGR', 'rgba8': 'COLOR_RGBA2BGR',
    'mono8': None, '8UC1': None, 'mono16': None, '16UC1': None,
    'bgr16': None, 'rgb16': 'COLOR_RGB2BGR',
    # ROS names the Bayer pattern from the top-left pixel, OpenCV from the second row.
    'bayer_rggb8': 'COLOR_BayerBG2BGR', 'bayer_bggr8': 'COLOR_BayerRG2BGR',
    'bayer_gbrg8': 'COLOR_BayerGR2BGR', 'bayer_grbg8': 'COLOR_BayerGB2BGR',
    'yuv422': 'COLOR_YUV2BGR_UYVY', 'uyvy': 'COLOR_YUV2BGR_UYVY',
    'yuv422_yuy2': 'COLOR_YUV2BGR_YUY2', 'yuyv': 'COLOR_YUV2BGR_YUY2',
}
_TO_BGR_BY_LOWER = {name.lower(): name for name in TO_BGR}

# What camera_node can publish (its `encoding` parameter).
CAMERA_ENCODINGS = ('bgr8', 'rgb8', 'mono8')
# What the inference engine takes, and in which colour order (alpha is dropped first).
ENGINE_COLOR_ORDERS = {'bgr8': 'BGR', 'rgb8': 'RGB', 'mono8': 'GRAY', '8UC1': 'GRAY',
                       '8UC3': 'BGR', 'bgra8': 'BGRA', 'rgba8': 'RGBA'}


class UnsupportedEncoding(ValueError):
    """An encoding that is not known (or not decodable where it was asked for)."""


def encoding_format(encoding: str) -> tuple[np.dtype, int]:
    """Return (dtype, channels) of a ROS image encoding, or raise naming the supported ones."""
    if encoding in NAMED_ENCODINGS:
        name, channels = NAMED_ENCODINGS[encoding]
        return np.dtype(name), channels
    match = _GENERIC.match(encoding)
    if match and (match.group(1), match.group(2)) in GENERIC_DTYPES:
        return np.dtype(GENERIC_DTYPES[(match.group(1), match.group(2))]), int(match.group(3))
    raise UnsupportedEncoding(f'unsupported image encoding {encoding!r}; expected one of '
                              f'{", ".join(SUPPORTED_ENCODINGS)}')


def bgr_decoding(encoding: str) -> tuple[np.dtype, int, int | None]:
    """(dtype, channels, OpenCV conversion to BGR) of an encoding, matched case-insensitively.

    Raises UnsupportedEncoding for an encoding that has no 8-bit BGR or mono rendering.
    """
    name = _TO_BGR_BY_LOWER.get(encoding.lower())
    if name is None:
        raise UnsupportedEncoding(f'unsupported image encoding {encoding!r} (supported: '
                                  f'{", ".join(sorted(_TO_BGR_BY_LOWER))})')
    import cv2  # only where images are decoded
    dtype, channels = encoding_format(name)
    conversion = TO_BGR[name]
    return dtype, channels, None if conversion is None else getattr(cv2, conversion)
