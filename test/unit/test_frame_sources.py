"""Tests for ros_onnx_vision.camera.frame_sources (no ROS needed)."""

from __future__ import annotations

import http.server
from pathlib import Path
import socket
import threading
from types import SimpleNamespace
from typing import Any, Iterator

import cv2
import numpy as np
import pytest

from ros_onnx_vision.camera.frame_sources import (Backoff, convert_frame, Frame, infer_kind,
                                                  open_source, parse_kind, SourceError, SourceKind,
                                                  SourceReadError)
from ros_onnx_vision.camera.sources.capture import DeviceSource
from ros_onnx_vision.camera.sources.rosbag import decode_compressed_msg, decode_image_msg
from ros_onnx_vision.camera.sources.synthetic import decode_synthetic_counter


def read_all(source: Any, limit: int = 1000) -> list[Frame]:
    frames = []
    for _ in range(limit):
        frame = source.read()
        if frame is None:
            break
        frames.append(frame)
    return frames


def gray(value: int, width: int = 64, height: int = 48) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


# --------------------------------------------------------------------------- infer_kind

@pytest.mark.parametrize('source, kind', [
    ('0', SourceKind.DEVICE),
    ('12', SourceKind.DEVICE),
    ('/dev/video0', SourceKind.DEVICE),
    ('/dev/v4l/by-id/usb-cam-video-index0', SourceKind.DEVICE),
    ('rtsp://user:pw@10.0.0.2:554/stream', SourceKind.STREAM),
    ('http://127.0.0.1:8080/video.mjpg', SourceKind.STREAM),
    ('https://example.org/cam', SourceKind.STREAM),
    ('synthetic', SourceKind.SYNTHETIC),
    ('synthetic:320x240', SourceKind.SYNTHETIC),
    ('Synthetic:320x240@15', SourceKind.SYNTHETIC),
    ('frames/*.png', SourceKind.IMAGES),
    ('missing.mcap', SourceKind.ROSBAG),
    ('missing.db3', SourceKind.ROSBAG),
    ('missing.PNG', SourceKind.IMAGE),
    ('missing.mp4', SourceKind.VIDEO),
])
def test_infer_kind(source: str, kind: SourceKind) -> None:
    assert infer_kind(source) is kind


def test_infer_kind_paths(tmp_path: Path) -> None:
    assert infer_kind(str(tmp_path)) is SourceKind.IMAGES
    bag = tmp_path / 'bag'
    bag.mkdir()
    (bag / 'metadata.yaml').write_text('x: 1\n')
    assert infer_kind(str(bag)) is SourceKind.ROSBAG
    odd = tmp_path / 'clip.weird'
    odd.write_bytes(b'data')
    assert infer_kind(str(odd)) is SourceKind.VIDEO


@pytest.mark.parametrize('source', ['', 'no/such/thing', 'ftp://host/x', 'synthetic:big'])
def test_infer_kind_unknown(source: str) -> None:
    with pytest.raises(SourceError) as err:
        infer_kind(source)
    assert repr(source) in str(err.value) or 'empty' in str(err.value)
    assert 'synthetic' in str(err.value) and '/dev/video0' in str(err.value)


def test_parse_kind() -> None:
    assert parse_kind('') is None and parse_kind('auto') is None
    assert parse_kind(' Video ') is SourceKind.VIDEO
    with pytest.raises(SourceError, match="'camera'.*'device'"):
        parse_kind('camera')


def test_open_source_bad_arguments() -> None:
    with pytest.raises(ValueError, match='fps'):
        open_source('synthetic', fps=-1.0)
    with pytest.raises(ValueError, match='width and height'):
        open_source('synthetic', width=-5)
    with pytest.raises(SourceError, match='cannot tell'):
        open_source('definitely-not-here')


# --------------------------------------------------------------------------- video

def write_video(path: Path, count: int, fps: float = 12.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*'MJPG'), fps, (64, 48))
    assert writer.isOpened()
    for i in range(count):
        writer.write(gray(20 * i))
    writer.release()


def test_video_file(tmp_path: Path) -> None:
    path = tmp_path / 'clip.avi'
    write_video(path, 10)
    source = open_source(str(path), loop=False)
    assert source.kind is SourceKind.VIDEO and not source.kind.live
    assert source.nominal_fps == pytest.approx(12.0)
    assert source.size == (64, 48)
    assert source.frame_count == 10
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(10))
    assert [round(float(f.image.mean()) / 20) for f in frames] == list(range(10))
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    times = [f.source_time for f in frames]
    assert times[0] == pytest.approx(0.0, abs=1e-6) and times[-1] == pytest.approx(9 / 12)
    assert source.read() is None and source.read() is None
    assert 'clip.avi' in source.describe()
    source.close()


def test_video_file_loops(tmp_path: Path) -> None:
    path = tmp_path / 'clip.avi'
    write_video(path, 4)
    with open_source(str(path), loop=True) as source:
        frames = read_all(source, limit=10)
    assert len(frames) == 10
    assert [f.index for f in frames] == list(range(10))
    assert [round(float(f.image.mean()) / 20) for f in frames] == [0, 1, 2, 3] * 2 + [0, 1]


def test_video_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"video file '.*nothere\.mp4' does not exist"):
        open_source(str(tmp_path / 'nothere.mp4'))
    junk = tmp_path / 'junk.avi'
    junk.write_bytes(b'\x00not a video' * 100)
    with pytest.raises(SourceError, match='junk.avi'):
        open_source(str(junk))


# --------------------------------------------------------------------------- images

def test_single_image(tmp_path: Path) -> None:
    path = tmp_path / 'one.png'
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), np.uint8)
    cv2.imwrite(str(path), image)
    source = open_source(str(path), loop=False)
    assert source.kind is SourceKind.IMAGE and source.size == (40, 30)
    first = source.read()
    assert first is not None and np.array_equal(first.image, image)
    assert source.read() is None
    looping = open_source(str(path))
    frames = read_all(looping, limit=3)
    assert len(frames) == 3 and all(np.array_equal(f.image, image) for f in frames)
    frames[0].image[:] = 0  # frames are independent copies
    assert np.array_equal(looping.read().image, image)


def test_single_image_mono_and_errors(tmp_path: Path) -> None:
    mono = tmp_path / 'mono.png'
    cv2.imwrite(str(mono), np.full((8, 10), 77, np.uint8))
    frame = open_source(str(mono)).read()
    assert frame is not None and frame.image.shape == (8, 10) and frame.image[0, 0] == 77
    deep = tmp_path / 'deep.png'
    cv2.imwrite(str(deep), np.full((8, 10), 0x4000, np.uint16))
    frame = open_source(str(deep)).read()
    assert frame is not None and frame.image.dtype == np.uint8 and frame.image[0, 0] == 0x40
    with pytest.raises(SourceError, match=r"image file '.*gone\.png' does not exist"):
        open_source(str(tmp_path / 'gone.png'))
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not a jpeg')
    with pytest.raises(SourceError, match=r"cannot decode image file '.*bad\.jpg'"):
        open_source(str(bad))


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for number in (10, 2, 1):
        cv2.imwrite(str(folder / f'img{number}.png'), gray(number))
    (folder / 'notes.txt').write_text('not an image')
    return folder


def test_image_directory_sorted_and_looping(image_dir: Path) -> None:
    source = open_source(str(image_dir), loop=False)
    assert source.kind is SourceKind.IMAGES
    values = [int(f.image[0, 0, 0]) for f in read_all(source)]
    assert values == [1, 2, 10]  # natural order, notes.txt ignored
    assert source.read() is None
    looping = open_source(str(image_dir), loop=True)
    frames = read_all(looping, limit=7)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10, 1, 2, 10, 1]
    assert frames[-1].index == 6


def test_image_glob(image_dir: Path) -> None:
    cv2.imwrite(str(image_dir / 'other.jpg'), gray(200))
    source = open_source(str(image_dir / 'img*.png'), loop=False)
    assert source.kind is SourceKind.IMAGES
    assert [int(f.image[0, 0, 0]) for f in read_all(source)] == [1, 2, 10]
    with pytest.raises(SourceError, match='matched no files'):
        open_source(str(image_dir / '*.tiff'))


def test_image_directory_skips_undecodable(image_dir: Path) -> None:
    (image_dir / 'img3.png').write_bytes(b'broken')
    source = open_source(str(image_dir), loop=True)
    values = [int(f.image[0, 0, 0]) for f in read_all(source, limit=6)]
    assert values == [1, 2, 10, 1, 2, 10]
    warnings = source.take_warnings()
    assert len(warnings) == 1 and 'img3.png' in warnings[0]  # reported once, then dropped
    assert source.take_warnings() == []


def test_image_directory_errors(tmp_path: Path) -> None:
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SourceError, match=r"directory '.*empty' contains no image files"):
        open_source(str(empty))
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'a.png').write_bytes(b'x')
    (broken / 'b.jpg').write_bytes(b'y')
    with pytest.raises(SourceError, match='none of the 2 files'):
        open_source(str(broken))


# --------------------------------------------------------------------------- synthetic

def test_synthetic_deterministic() -> None:
    a = open_source('synthetic:160x120@15')
    b = open_source('synthetic', width=160, height=120, fps=15.0)
    assert a.kind is SourceKind.SYNTHETIC and a.size == (160, 120) and a.nominal_fps == 15.0
    frames_a, frames_b = read_all(a, limit=5), read_all(b, limit=5)
    for fa, fb in zip(frames_a, frames_b):
        assert np.array_equal(fa.image, fb.image)
    assert frames_a[0].image.shape == (120, 160, 3)
    assert not np.array_equal(frames_a[0].image, frames_a[1].image)
    assert [decode_synthetic_counter(f.image) for f in frames_a] == [0, 1, 2, 3, 4]
    assert frames_a[3].source_time == pytest.approx(3 / 15)
    big = open_source('synthetic:640x480')
    assert big.nominal_fps is None and big.read().image.shape == (480, 640, 3)
    with pytest.raises(SourceError, match='too small'):
        open_source('synthetic:8x8')


# --------------------------------------------------------------------------- rosbag

def make_bag(path: Path, plugin_name: str, topics: dict[str, list[Any]]) -> None:
    """Write a rosbag2; topics maps name -> [(log_ns, msgtype, message), ...]."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if plugin_name == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        events = []
        for topic, items in topics.items():
            connection = writer.add_connection(topic, items[0][1], typestore=store)
            events += [(log_ns, connection, typ, msg) for log_ns, typ, msg in items]
        for log_ns, connection, typ, msg in sorted(events, key=lambda e: e[0]):
            writer.write(connection, log_ns, store.serialize_cdr(msg, typ))


def image_msg(stamp_ns: int, image: np.ndarray, encoding: str, frame_id: str = 'cam') -> Any:
    from rosbags.typesys import get_typestore, Stores

    types = get_typestore(Stores.ROS2_JAZZY).types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                   nanosec=stamp_ns % 10**9),
        frame_id=frame_id)
    return types['sensor_msgs/msg/Image'](
        header=header, height=image.shape[0], width=image.shape[1], encoding=encoding,
        is_bigendian=0, step=image.strides[0], data=image.reshape(-1).view(np.uint8))


def compressed_msg(stamp_ns: int, image: np.ndarray, fmt: str) -> Any:
    from rosbags.typesys import get_typestore, Stores

    types = get_typestore(Stores.ROS2_JAZZY).types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                   nanosec=stamp_ns % 10**9),
        frame_id='cam')
    data = cv2.imencode(f'.{fmt}', image)[1].reshape(-1)
    return types['sensor_msgs/msg/CompressedImage'](header=header, format=fmt, data=data)


def string_msg(text: str) -> Any:
    from rosbags.typesys import get_typestore, Stores

    return get_typestore(Stores.ROS2_JAZZY).types['std_msgs/msg/String'](data=text)


T0 = 1_700_000_000 * 10**9
COLOR = [np.random.default_rng(i).integers(0, 255, (6, 8, 3), np.uint8) for i in range(3)]
MONO = [np.full((6, 8), 40 * i + 5, np.uint8) for i in range(3)]


@pytest.fixture(params=['mcap', 'sqlite3'])
def two_topic_bag(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f'bag_{request.param}'
    image = 'sensor_msgs/msg/Image'
    make_bag(path, request.param, {
        # header stamps 5 ms before the log (receive) times, 10 Hz
        '/cam/color': [
            (T0 + i * 10**8, image, image_msg(T0 + i * 10**8 - 5 * 10**6, COLOR[i], 'bgr8'))
            for i in range(3)],
        '/cam/mono': [(T0 + i * 10**8 + 1, image, image_msg(T0 + i * 10**8, MONO[i], 'mono8'))
                      for i in range(3)],
        '/chatter': [(T0 + 3, 'std_msgs/msg/String', string_msg('hello'))],
    })
    return path


def test_rosbag_replays_pixels_and_stamps(two_topic_bag: Path) -> None:
    source = open_source(str(two_topic_bag), rosbag_topic='/cam/color', loop=False)
    assert source.kind is SourceKind.ROSBAG
    frames = read_all(source)
    assert len(frames) == 3
    for i, frame in enumerate(frames):
        assert np.array_equal(frame.image, COLOR[i])
        assert frame.source_time == pytest.approx((T0 + i * 10**8) / 1e9, abs=1e-6)
    assert source.read() is None
    assert source.nominal_fps == pytest.approx(10.0, rel=0.01)
    assert '/cam/color' in source.describe()
    source.close()
    mono = open_source(str(two_topic_bag), rosbag_topic='/cam/mono', loop=True)
    frames = read_all(mono, limit=5)
    assert [int(f.image[0, 0]) for f in frames] == [5, 45, 85, 5, 45]
    assert frames[0].image.shape == (6, 8) and frames[4].index == 4
    mono.close()


def test_rosbag_storage_file_path(two_topic_bag: Path) -> None:
    storage = next(p for p in two_topic_bag.iterdir() if p.suffix in ('.mcap', '.db3'))
    assert infer_kind(str(storage)) is SourceKind.ROSBAG
    with open_source(str(storage), rosbag_topic='/cam/mono', loop=False) as source:
        assert len(read_all(source)) == 3


def test_rosbag_topic_errors(two_topic_bag: Path) -> None:
    with pytest.raises(SourceError, match='several image topics.*/cam/color, /cam/mono'):
        open_source(str(two_topic_bag))
    with pytest.raises(SourceError, match="no topic '/nope'; image topics: /cam/color, /cam/m"):
        open_source(str(two_topic_bag), rosbag_topic='/nope')
    with pytest.raises(SourceError, match="'/chatter' is std_msgs/msg/String"):
        open_source(str(two_topic_bag), rosbag_topic='/chatter')


def test_rosbag_single_topic_and_compressed(tmp_path: Path) -> None:
    path = tmp_path / 'compressed'
    smooth = cv2.resize(COLOR[0], (32, 24))
    make_bag(path, 'mcap', {
        '/cam/compressed': [(T0 + i, 'sensor_msgs/msg/CompressedImage',
                             compressed_msg(0, smooth, 'png')) for i in range(2)],
        '/chatter': [(T0, 'std_msgs/msg/String', string_msg('hi'))],
    })
    with open_source(str(path), loop=False) as source:  # the only image topic is chosen
        frames = read_all(source)
    assert len(frames) == 2 and np.array_equal(frames[0].image, smooth)
    assert frames[0].source_time == pytest.approx(T0 / 1e9)  # replay on the log time


def test_rosbag_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"rosbag '.*absent\.mcap' does not exist"):
        open_source(str(tmp_path / 'absent.mcap'))
    path = tmp_path / 'text_only'
    make_bag(path, 'mcap', {'/chatter': [(T0, 'std_msgs/msg/String', string_msg('hi'))]})
    with pytest.raises(SourceError, match=r'no sensor_msgs/msg/Image.*/chatter'):
        open_source(str(path))
    broken = tmp_path / 'broken.mcap'
    broken.write_bytes(b'not an mcap file')
    with pytest.raises(SourceError, match='cannot read rosbag'):
        open_source(str(broken))


def test_rosbag_unsupported_encoding(tmp_path: Path) -> None:
    path = tmp_path / 'float'
    depth = np.zeros((4, 4), np.float32)
    make_bag(path, 'mcap', {'/depth': [(T0, 'sensor_msgs/msg/Image',
                                        image_msg(T0, depth, '32FC1'))]})
    with pytest.raises(SourceError, match="unsupported image encoding '32FC1'"):
        open_source(str(path))


def raw_msg(image: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Any:
    rows = image.reshape(image.shape[0], -1)
    if bigendian:
        rows = rows.astype(rows.dtype.newbyteorder('>'))
    rows = rows.view(np.uint8)
    padded = np.zeros((rows.shape[0], rows.shape[1] + pad), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return SimpleNamespace(height=image.shape[0], width=image.shape[1], encoding=encoding,
                           step=padded.shape[1], is_bigendian=int(bigendian),
                           data=padded.reshape(-1))


def test_decode_image_msg_encodings() -> None:
    bgr = COLOR[1]
    assert np.array_equal(decode_image_msg(raw_msg(bgr, 'bgr8', pad=3)), bgr)
    assert np.array_equal(decode_image_msg(raw_msg(bgr[:, :, ::-1].copy(), 'rgb8')), bgr)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 9, np.uint8)])
    assert np.array_equal(decode_image_msg(raw_msg(bgra, 'bgra8')), bgr)
    rgba = np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 9, np.uint8)])
    assert np.array_equal(decode_image_msg(raw_msg(rgba, 'rgba8')), bgr)
    deep = np.full((3, 5), 0x1234, np.uint16)
    for big in (False, True):
        out = decode_image_msg(raw_msg(deep, 'mono16', pad=2, bigendian=big))
        assert out.dtype == np.uint8 and out.shape == (3, 5) and np.all(out == 0x12)
    with pytest.raises(ValueError, match='malformed'):
        decode_image_msg(SimpleNamespace(height=4, width=4, encoding='bgr8', step=12,
                                         is_bigendian=0, data=np.zeros(10, np.uint8)))
    jpeg = SimpleNamespace(format='jpeg', data=cv2.imencode('.jpg', gray(128))[1].reshape(-1))
    assert abs(float(decode_compressed_msg(jpeg).mean()) - 128) < 2


# --------------------------------------------------------------------------- stream

def jpeg_bytes(value: int) -> bytes:
    return cv2.imencode('.jpg', gray(value, 80, 60))[1].tobytes()


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    """multipart/x-mixed-replace: '/live' streams until the client leaves, '/short' 3 frames."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header('Content-Type', 'multipart/x-mixed-replace; boundary=frame')
        self.end_headers()
        count = 3 if self.path == '/short' else 1000
        try:
            for i in range(count):
                data = jpeg_bytes(min(250, 50 * (i % 5) + 20))
                self.wfile.write(b'--frame\r\nContent-Type: image/jpeg\r\n'
                                 b'Content-Length: %d\r\n\r\n' % len(data) + data + b'\r\n')
                self.wfile.flush()
                self.server.sent += 1  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def mjpeg_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), MjpegHandler)
    server.daemon_threads = True
    server.sent = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_mjpeg_http_stream(mjpeg_server: str) -> None:
    source = open_source(f'{mjpeg_server}/live', stream_timeout=3.0)
    assert source.kind is SourceKind.STREAM and source.kind.live
    assert source.nominal_fps is None
    frames = [source.read() for _ in range(6)]
    assert [f.index for f in frames] == list(range(6))
    assert frames[0].image.shape == (60, 80, 3) and source.size == (80, 60)
    means = [round(float(f.image.mean())) for f in frames]
    assert all(abs(m - e) <= 3 for m, e in zip(means, [20, 70, 120, 170, 220, 20])), means
    source.close()


def test_mjpeg_stream_drop_and_reconnect(mjpeg_server: str) -> None:
    source = open_source(f'{mjpeg_server}/short', stream_timeout=3.0)
    got = []
    with pytest.raises(SourceReadError, match='/short: no frame'):
        for _ in range(10):
            got.append(source.read())
    assert len(got) == 3  # Content-Length lets FFmpeg hand over the last part at once
    frame = source.read()  # reconnects
    assert frame.index == 3 and abs(float(frame.image.mean()) - 20) <= 3
    source.close()


def test_stream_refused() -> None:
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match=f'cannot open stream http://127.0.0.1:{port}/x'):
        open_source(f'http://127.0.0.1:{port}/x', stream_timeout=2.0)


def test_stream_credentials_hidden() -> None:
    class Closed:
        def isOpened(self) -> bool:  # noqa: N802
            return False

        def release(self) -> None:
            pass

    with pytest.raises(SourceError) as err:
        open_source('rtsp://admin:secret@10.1.2.3:554/live',
                    capture_factory=lambda *args: Closed())
    assert 'secret' not in str(err.value) and '10.1.2.3:554/live' in str(err.value)


# --------------------------------------------------------------------------- V4L2 double

class FakeCapture:
    """A cv2.VideoCapture double for a camera that only does 1280x720 MJPG at up to 30 fps."""

    def __init__(self, target: Any, api: int, opened: bool = True,
                 frames: list[np.ndarray | None] | None = None):
        self.target, self.api, self.opened = target, api, opened
        self.frames = list(frames or [])
        self.sets: list[tuple[int, float]] = []
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0,
                      cv2.CAP_PROP_FPS: 30.0,
                      cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter.fourcc(*'YUYV'))}
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def set(self, prop: int, value: float) -> bool:  # noqa: A003
        self.sets.append((prop, value))
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            value = 1280.0
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            value = 720.0
        elif prop == cv2.CAP_PROP_FPS:
            value = min(value, 30.0)
        self.props[prop] = float(value)
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        image = self.frames.pop(0) if self.frames else None
        return image is not None, image

    def release(self) -> None:
        self.released = True


class CaptureFactory:
    def __init__(self, *plans: dict[str, Any]):
        self.plans = list(plans)
        self.made: list[FakeCapture] = []

    def __call__(self, target: Any, api: int, params: Any) -> FakeCapture:
        capture = FakeCapture(target, api, **(self.plans.pop(0) if self.plans else {}))
        self.made.append(capture)
        return capture


def test_v4l2_requests_and_reports_granted() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    factory = CaptureFactory({'frames': [frame, frame]})
    source = open_source('/dev/video0', width=1920, height=1080, fps=60.0, pixel_format='mjpg',
                         capture_factory=factory)
    assert isinstance(source, DeviceSource) and source.kind.live
    capture = factory.made[0]
    assert capture.target == '/dev/video0' and capture.api == cv2.CAP_V4L2
    props = [prop for prop, _ in capture.sets]
    assert props == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                     cv2.CAP_PROP_FPS]  # pixel format first: it decides the sizes on offer
    assert capture.sets[0][1] == cv2.VideoWriter.fourcc(*'MJPG')
    assert (source.granted.width, source.granted.height) == (1280, 720)
    assert source.granted.fps == 30.0 and source.granted.pixel_format == 'MJPG'
    assert source.nominal_fps == 30.0 and source.size == (1280, 720)
    warnings = source.take_warnings()
    assert any('requested 1920x1080, device granted 1280x720' in w for w in warnings)
    assert any('requested 60 fps, device granted 30 fps' in w for w in warnings)
    assert not any('pixel format' in w for w in warnings)
    assert 'MJPG' in source.describe() and '1280x720' in source.describe()
    assert source.read().image.shape == (720, 1280, 3)


def test_v4l2_index_and_no_requests() -> None:
    factory = CaptureFactory({})
    source = open_source('3', capture_factory=factory)
    assert factory.made[0].target == 3 and factory.made[0].sets == []
    assert source.take_warnings() == [] and source.size == (640, 480)


def test_v4l2_device_missing() -> None:
    factory = CaptureFactory({'opened': False})
    with pytest.raises(SourceError, match=r"V4L2 device '/dev/video97' does not exist"):
        open_source('/dev/video97', capture_factory=factory)
    assert factory.made[0].released
    with pytest.raises(SourceError, match="'/dev/video96' does not exist"):
        open_source('96', capture_factory=CaptureFactory({'opened': False}))
    with pytest.raises(SourceError, match='FOURCC'):
        open_source('0', pixel_format='MJPEG', capture_factory=CaptureFactory({}))


def test_v4l2_read_failure_and_reopen() -> None:
    frame = np.full((480, 640, 3), 7, np.uint8)
    factory = CaptureFactory({'frames': [frame, None]}, {'frames': [frame]}, {'opened': False})
    source = open_source('/dev/video5', fps=30.0, capture_factory=factory)
    assert source.read().index == 0
    with pytest.raises(SourceReadError, match="'/dev/video5': read failed"):
        source.read()
    assert factory.made[0].released
    frame1 = source.read()  # reopened, settings applied again
    assert frame1.index == 1 and len(factory.made) == 2
    assert factory.made[1].sets == [(cv2.CAP_PROP_FPS, 30.0)]
    with pytest.raises(SourceReadError):
        source.read()  # the second capture has no more frames
    with pytest.raises(SourceReadError, match='reopen failed.*does not exist'):
        source.read()  # unplugged
    source.close()


def test_backoff() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max_delay=3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    with pytest.raises(ValueError):
        Backoff(initial=0.0)


# --------------------------------------------------------------------------- convert_frame

def test_convert_frame_no_change_returns_same_array() -> None:
    image = gray(9)
    assert convert_frame(image) is image
    assert convert_frame(image, width=64, height=48, encoding='bgr8') is image
    mono = np.zeros((48, 64), np.uint8)
    assert convert_frame(mono, encoding='mono8') is mono


def test_convert_frame_resize_and_encodings() -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :, 2] = 200  # red in BGR
    assert convert_frame(image, width=32, height=16).shape == (16, 32, 3)
    assert convert_frame(image, width=32).shape == (24, 32, 3)  # aspect kept
    assert convert_frame(image, height=96).shape == (96, 128, 3)
    rgb = convert_frame(image, encoding='rgb8')
    assert rgb[0, 0].tolist() == [200, 0, 0] and rgb.flags.c_contiguous
    mono = convert_frame(image, encoding='mono8', width=16)
    assert mono.shape == (12, 16) and mono[0, 0] == round(0.299 * 200)
    bgr = convert_frame(np.full((4, 4), 50, np.uint8), encoding='bgr8')
    assert bgr.shape == (4, 4, 3) and bgr[0, 0].tolist() == [50, 50, 50]
    assert convert_frame(np.full((4, 4), 50, np.uint8), encoding='rgb8').shape == (4, 4, 3)
    strided = np.zeros((48, 128, 3), np.uint8)[:, ::2]
    out = convert_frame(strided)
    assert out.flags.c_contiguous and out.shape == (48, 64, 3)


def test_convert_frame_errors() -> None:
    image = gray(1)
    with pytest.raises(ValueError, match="unsupported encoding 'yuv422'; accepted: bgr8, rgb8"):
        convert_frame(image, encoding='yuv422')
    with pytest.raises(ValueError, match='>= 0'):
        convert_frame(image, width=-1)
    with pytest.raises(ValueError, match='uint8'):
        convert_frame(image.astype(np.float32))
    with pytest.raises(ValueError, match='shape'):
        convert_frame(np.zeros((4, 4, 2), np.uint8))


def test_bag_directory_without_metadata(two_topic_bag: Path) -> None:
    (two_topic_bag / 'metadata.yaml').unlink()
    assert infer_kind(str(two_topic_bag)) is SourceKind.ROSBAG
    with open_source(str(two_topic_bag), rosbag_topic='/cam/color', loop=False) as source:
        assert len(read_all(source)) == 3
    cv2.imwrite(str(two_topic_bag / 'a.png'), gray(1))
    assert infer_kind(str(two_topic_bag)) is SourceKind.IMAGES
