"""The parameters of every node: one typed dataclass per node, the single source of defaults.

Each field is a ROS parameter: its type, default, description, range, allowed values and
whether it may change while the node runs (`read_only`) are declared once, here, with
:func:`parameter`. The nodes declare them from these classes (`ros.vision_node`) and read them
as attributes (`self.params.fps`); tests, the launch-file checks and the documentation read the
same classes. No rclpy here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ros_onnx_vision.image_encodings import CAMERA_ENCODINGS

_SPEC = 'ros_parameter'


@dataclass(frozen=True)
class ParameterSpec:
    """A node parameter. `choices` restricts strings; `low`/`high` bound numbers (inclusive)."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def check(self, value: Any) -> str | None:
        """Return why `value` is not acceptable, or None when it is."""
        if self.choices and value not in self.choices:
            return f'{self.name}={value!r} is not one of {", ".join(self.choices)}'
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.low is not None and value < self.low:
                return f'{self.name}={value} is below the minimum {self.low:g}'
            if self.high is not None and value > self.high:
                return f'{self.name}={value} is above the maximum {self.high:g}'
        return None


def parameter(default: Any, description: str, *, low: float | None = None,
              high: float | None = None, choices: tuple[str, ...] = (),
              read_only: bool = False) -> Any:
    """A dataclass field that is a ROS parameter (its spec rides in the field's metadata)."""
    spec = ParameterSpec('', default, description, low, high, tuple(choices), read_only)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={_SPEC: spec})
    return dataclasses.field(default=default, metadata={_SPEC: spec})



def parameter_specs(parameters: type[Any]) -> tuple[ParameterSpec, ...]:
    """The ParameterSpec of every field of a node's parameter class, in declaration order."""
    return tuple(dataclasses.replace(f.metadata[_SPEC], name=f.name)
                 for f in dataclasses.fields(parameters))


def autostart() -> Any:
    return parameter(True, 'Configure and activate at start; false leaves the lifecycle node '
                     'unconfigured, for a lifecycle manager or `ros2 lifecycle set`',
                     read_only=True)


def diagnostics_period() -> Any:
    return parameter(1.0, 'Seconds between diagnostic_msgs/DiagnosticArray reports on '
                     '/diagnostics (steady time)', low=0.1, high=60.0, read_only=True)


RELIABILITY = ('best_effort', 'reliable')  # publishers
# Subscriptions: best_available follows the publishers (ros.matched_subscription).
SUBSCRIPTION_RELIABILITY = ('best_available', 'best_effort', 'reliable')


@dataclass(frozen=True)
class CameraParameters:
    """camera_node."""

    source: str = parameter(
        'synthetic',
        'Image source: a V4L2 device (/dev/video0 or an index such as 0), a video file, an '
        'image, a directory or glob of images, an rtsp:// or http:// stream, a rosbag2 '
        "recording (.mcap, .db3 or bag folder) or 'synthetic' ('synthetic:640x480' sets its "
        'size)',
        read_only=True)
    source_kind: str = parameter(
        '',
        'Override the kind inferred from source (empty = infer)',
        choices=('', 'device', 'video', 'image', 'images', 'stream', 'rosbag', 'synthetic'),
        read_only=True)
    frame_id: str = parameter('camera', 'frame_id of the published images and CameraInfo')
    camera_name: str = parameter(
        'camera',
        'Camera name reported in logs and calibration',
        read_only=True)
    fps: float = parameter(
        -1.0,
        "Target publish rate in Hz: -1 = the source's own rate (video files, bags; 30 for "
        'sources without one), 0 = as fast as possible (benchmarks)',
        low=-1.0, high=1000.0, read_only=True)
    width: int = parameter(
        0,
        'Output width in pixels (0 = source width; resize when set)',
        low=0, high=16384)
    height: int = parameter(
        0,
        'Output height in pixels (0 = source height; resize when set)',
        low=0, high=16384)
    encoding: str = parameter('bgr8', 'Published image encoding', choices=CAMERA_ENCODINGS)
    loop: bool = parameter(
        True,
        'Restart files, image lists and bags at their end',
        read_only=True)
    end_action: str = parameter(
        'idle',
        'At the end of a non-looping source: stay idle or exit the node',
        choices=('idle', 'exit'))
    camera_info_url: str = parameter(
        '',
        'Calibration YAML (file:// URL or path, camera_calibration format); empty = an '
        'uncalibrated CameraInfo of the right size',
        read_only=True)
    device_pixel_format: str = parameter(
        '',
        'V4L2 pixel format to request (FOURCC such as MJPG or YUYV; empty = default)',
        read_only=True)
    rosbag_topic: str = parameter(
        '',
        'Image topic to replay from a rosbag2 recording (empty = its only Image topic)',
        read_only=True)
    reliability: str = parameter(
        'best_effort',
        'QoS reliability of image_raw and camera_info (sensor data: best_effort)',
        choices=RELIABILITY, read_only=True)
    depth: int = parameter(
        5,
        'QoS keep-last depth of image_raw and camera_info',
        low=1, high=100, read_only=True)
    jpeg_quality: int = parameter(
        80,
        "JPEG quality of image_raw/compressed (image_transport's compressed topic; encoded "
        'only while someone subscribes to it)',
        low=1, high=100, read_only=True)
    wait_for_subscribers: int = parameter(
        0,
        'Hold the first frame until image_raw has this many subscribers (recording, tests: no '
        'frame lost to discovery); 0 = publish at once',
        low=0, high=100, read_only=True)
    retry_initial_delay: float = parameter(
        0.5,
        'First delay in seconds before reopening a source that failed',
        low=0.01, high=60.0, read_only=True)
    retry_max_delay: float = parameter(
        10.0,
        'Longest delay in seconds between reopen attempts (doubling backoff)',
        low=0.01, high=600.0, read_only=True)
    max_retries: int = parameter(
        -1,
        'Reopen attempts before giving up (-1 = forever, 0 = never retry)',
        low=-1, high=1_000_000)

    autostart: bool = autostart()
    diagnostics_period: float = diagnostics_period()

    def __post_init__(self) -> None:
        if self.fps < 0 and self.fps != -1:
            raise ValueError(f'invalid parameter: fps={self.fps} is negative; expected -1 '
                             '(source rate), 0 (as fast as possible) or a rate > 0')


@dataclass(frozen=True)
class InferenceParameters:
    """inference_node."""

    model: str = parameter(
        'centernet_mobilenetv3_512.yaml',
        "Model card (YAML): a path, or a file name in the package's models/ folder",
        read_only=True)
    execution_providers: list[str] = parameter(
        ['cpu'],
        'ONNX Runtime execution providers in order of preference (tensorrt, cuda, cpu or full '
        'names); the first that loads is used',
        read_only=True)
    strict_providers: bool = parameter(
        False,
        'Fail configuration when a requested provider cannot load, instead of falling back to '
        'the next one (with a warning saying why)',
        read_only=True)
    intra_op_threads: int = parameter(
        0,
        'ONNX Runtime intra-op threads (0 = automatic: one per available CPU, less one for the '
        'camera, DDS and smoothing; at least 1)',
        low=0, high=256, read_only=True)
    intra_op_spinning: bool = parameter(
        False,
        "Let idle ONNX Runtime threads busy-wait for the next frame (ONNX Runtime's own "
        'default). Off: the camera and smoothing processes get that CPU',
        read_only=True)
    graph_optimization: str = parameter(
        'all',
        'ONNX Runtime graph optimisation level',
        choices=('disable', 'basic', 'extended', 'all'), read_only=True)
    optimized_model_cache: str = parameter(
        '',
        'Where to store the optimised model for faster later starts (empty = none)',
        read_only=True)
    score_threshold: float = parameter(
        -1.0,
        'Minimum score of a result (-1 = the model card default)',
        low=-1.0, high=1.0)
    nms_iou_threshold: float = parameter(
        -1.0,
        'IoU above which overlapping boxes are suppressed (-1 = model card default)',
        low=-1.0, high=1.0)
    class_filter: list[str] = parameter(
        ['card'],
        'Labels to keep: ["card"] = the model card\'s filter, [] = all classes')
    top_k: int = parameter(
        0,
        'Classification results to publish (0 = model card default)',
        low=0, high=1000)
    digit_roi: list[float] = parameter(
        [0.2, 0.1, 0.6, 0.8],
        'Classification with digit extraction: region searched for a written digit, x, y, '
        'width, height as fractions of the image')
    annotate_confirmed: bool = parameter(
        True,
        'Moved to annotator_node, which draws image_annotated; declared so that parameter '
        'files setting it still load (a non-default value logs a warning)',
        read_only=True)
    reliability: str = parameter(
        'best_available',
        'QoS reliability of the image subscription: best_available follows the camera '
        '(reliable for a reliable one, best effort for a best-effort one such as a '
        "simulator's; best effort on Humble); best_effort or reliable force one (a reliable "
        'subscriber never hears a best-effort camera)',
        choices=SUBSCRIPTION_RELIABILITY, read_only=True)
    image_transport: str = parameter(
        'raw',
        'Input transport, as image_transport names it: raw subscribes the image topic '
        '(sensor_msgs/Image), compressed its <topic>/compressed (sensor_msgs/CompressedImage, '
        'JPEG or PNG)',
        choices=('raw', 'compressed'), read_only=True)
    jpeg_quality: int = parameter(
        80,
        'Moved to annotator_node (image_annotated/compressed); declared so that parameter '
        'files setting it still load (a non-default value logs a warning)',
        low=1, high=100, read_only=True)
    autostart: bool = autostart()
    max_image_pixels: int = parameter(
        50_000_000,
        'Refuse images with more pixels than this instead of allocating for them',
        low=1, high=1_000_000_000)

    diagnostics_period: float = diagnostics_period()


@dataclass(frozen=True)
class SmoothingParameters:
    """smoothing_node."""

    task: str = parameter(
        'detection',
        'What to smooth: detections or classification',
        choices=('detection', 'classification'), read_only=True)
    window: float = parameter(
        0.5,
        'Confirmation window in seconds: N = max(1, round(FPS * window)) agreeing frames '
        'confirm a result',
        low=0.001, high=60.0)
    release_frames: int = parameter(
        0,
        'M: consecutive disagreeing or empty frames that release a confirmed result (0 = N // '
        '2 for labels, N for detection tracks, which are published at their predicted box for '
        'the first max(1, N // 4) of them only, and remembered until 6 M misses: matched on '
        '2 consecutive frames then, published again with their id)',
        low=0, high=100_000)
    min_score: float = parameter(
        0.0,
        'Results below this score count as no result',
        low=0.0, high=1.0)
    timeout: float = parameter(
        1.0,
        'Seconds without input (by stamps and by the node clock) after which everything '
        'confirmed is released',
        low=0.001, high=3600.0)
    rate_window: float = parameter(
        2.0,
        'Seconds of header stamps used to estimate the frame rate',
        low=0.05, high=600.0, read_only=True)
    min_iou: float = parameter(
        0.3,
        "Detections: minimum IoU between a box and a track's predicted box to associate them "
        '(a centre within 1.5 box sizes also does)',
        low=0.01, high=1.0)
    box_smoothing: float = parameter(
        0.0,
        'Detections: exponential smoothing of confirmed boxes (0 = off, towards 1 = smoother)',
        low=0.0, high=0.99)
    reliability: str = parameter(
        'best_available',
        'QoS reliability of the result subscription (best_available follows the publisher: '
        'reliable for inference_node)',
        choices=SUBSCRIPTION_RELIABILITY, read_only=True)

    autostart: bool = autostart()
    diagnostics_period: float = diagnostics_period()


@dataclass(frozen=True)
class AnnotatorParameters:
    """annotator_node."""

    task: str = parameter(
        'detection',
        'What to draw: detections (Detection2DArray) or classification (Classification), from '
        'the raw and the *_smoothed topics',
        choices=('detection', 'classification'), read_only=True)
    annotate_confirmed: bool = parameter(
        True,
        'Draw the confirmed results of smoothing_node (bold, with track ids; paired by stamp '
        'from the *_smoothed topic) over the raw ones; false = raw results only, drawn as soon '
        'as they arrive',
        read_only=True)
    image_transport: str = parameter(
        'raw',
        'Input transport, as image_transport names it: raw subscribes the image topic '
        '(sensor_msgs/Image), compressed its <topic>/compressed (sensor_msgs/CompressedImage, '
        'JPEG or PNG; decoded only for frames drawn)',
        choices=('raw', 'compressed'), read_only=True)
    reliability: str = parameter(
        'best_available',
        'QoS reliability of the image subscription: best_available follows the camera; '
        'best_effort or reliable force one',
        choices=SUBSCRIPTION_RELIABILITY, read_only=True)
    jpeg_quality: int = parameter(
        80, 'JPEG quality of image_annotated/compressed (encoded only while subscribed)',
        low=1, high=100, read_only=True)
    wait: float = parameter(
        0.3,
        'Seconds (steady time) a raw result waits for the confirmed result of the same stamp '
        'before it is drawn without it',
        low=0.0, high=10.0, read_only=True)
    buffer_frames: int = parameter(
        30, 'Images kept for their results: the newest this many (30 = 1 s at 30 Hz)',
        low=1, high=1000, read_only=True)
    buffer_age: float = parameter(
        1.0,
        'Images kept for their results: none older (by header stamp) than this many seconds '
        'before the newest',
        low=0.01, high=60.0, read_only=True)
    max_image_pixels: int = parameter(
        50_000_000, 'Refuse images with more pixels than this instead of allocating for them',
        low=1, high=1_000_000_000)
    autostart: bool = autostart()
    diagnostics_period: float = diagnostics_period()
