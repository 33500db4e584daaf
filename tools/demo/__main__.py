"""The main job: the real pipeline (four node processes over DDS) on an embedded input.

    python -m tools.demo [--task human_detection|digit_classification]
        [--output DIR] [--max-seconds S] [--input VIDEO|IMAGE_FOLDER] [--fps F]

Starts camera_node on the input video (not looping, exiting at its end), inference_node,
smoothing_node and annotator_node from the graph description, records every frame, raw
result and smoothed result in this process, shows progress, and writes to the output folder:
annotated.mp4 (confirmed boxes with track ids, or the confirmed digit), results.jsonl (every
frame's raw and confirmed results; raw_received false where a processed frame's raw result
never reached the recorder, counted as raw_missing and warned about), summary.png (raw vs
confirmed over time, end-to-end latency, processing rate) and summary.json (the headline figures).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys
import time

import cv2
import numpy as np
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from ros_onnx_vision.camera.frame_sources import IMAGE_EXTENSIONS
from ros_onnx_vision.smoothing.labelled_video import read_seqinfo
from tools.demo import inputs as demo_inputs
from tools.demo.report import draw_frame, FrameRecord, summary, summary_figure, write_jsonl
from ros_onnx_vision.ros.graph import pipeline, TASKS
from tools.demo.graph_runner import GraphProcesses, node_environment
from ros_onnx_vision.ros.image_conversion import image_to_numpy
from ros_onnx_vision.results import Detection, Result
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, results_from_msg
from ros_onnx_vision.ros.malloc_tuning import keep_image_buffers
from tools.ros_probe import host_only_participant, RosProbe


@dataclass
class DemoInput:
    video: Path
    fps: float
    description: str
    segments: list[demo_inputs.DigitSegment] | None = None

    def truth(self, frame: int) -> int | None:
        for segment in self.segments or []:
            if segment.start <= frame < segment.end:
                return segment.digit
        return None


def folder_input(folder: Path, fps: float | None) -> DemoInput:
    """A folder of frames (a MOTChallenge img1/, an OTB img/) played in name order, at fps,
    else the frameRate of a MOTChallenge seqinfo.ini beside it, else 30 (said so)."""
    count = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not count:
        raise SystemExit(f'[demo] {folder} holds no image files '
                         f'({", ".join(sorted(IMAGE_EXTENSIONS))})')
    rate = read_seqinfo(folder.parent).get('frameRate')
    if not fps and rate:
        fps = float(rate)
        origin = f'{fps:g} fps from {folder.parent / "seqinfo.ini"}'
    elif fps:
        origin = f'{fps:g} fps (--fps)'
    else:
        fps, origin = 30.0, '30 fps: no --fps given and no seqinfo.ini beside it'
    return DemoInput(folder, fps, f'{folder} ({count} frames at {origin})')


def prepare_input(task: str, output: Path, given: str | None,
                  fps: float | None = None) -> DemoInput:
    if given and Path(given).is_dir():
        return folder_input(Path(given), fps)
    if given:
        video = Path(given)
    elif task == 'human_detection':
        video = demo_inputs.pedestrian_video(log=lambda m: print(f'[demo] {m}', flush=True))
        if video is None:
            video = demo_inputs.stills_video(output / 'fallback_stills.avi')
            print('[demo] FALLBACK: using a clip of the four vtest stills in test/data '
                  '(opencv-doc could not be fetched)', flush=True)
    else:
        video = output / 'digits_camera.avi'
        segments = demo_inputs.digits_video(video)
        return DemoInput(video, 15.0, f'{len(segments) // 2} held-out MNIST digits on paper',
                         segments)
    capture = cv2.VideoCapture(str(video))
    fps = fps or capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return DemoInput(video, fps, f'{video.name} ({frames} frames at {fps:g} fps)')


class Recorder(RosProbe):
    """An rclpy node in this process that keeps every frame and result by stamp."""

    def __init__(self, domain: int, task: str) -> None:
        super().__init__(domain, 'demo_recorder')
        graph = pipeline(task)
        result_type = RESULT_MESSAGES[graph.inference_task]
        self.frames: dict[float, bytes] = {}  # stamp -> JPEG
        self.raw: dict[float, list[Result]] = {}
        self.records: dict[float, FrameRecord] = {}
        reliable = QoSProfile(depth=100)
        # Best effort as the camera publishes, with room for a burst: a frame this recorder
        # drops is missing from the video and its results.
        self.node.create_subscription(
            Image, 'image_raw', self.on_image,
            QoSProfile(depth=30, reliability=qos_profile_sensor_data.reliability))
        self.raw_subscription = self.node.create_subscription(
            result_type, graph.result_topic, self.on_raw, reliable)
        self.smoothed_subscription = self.node.create_subscription(
            result_type, graph.smoothed_topic, self.on_smoothed, reliable)

    def listening(self) -> bool:
        """Both result subscriptions are matched with their publishers (discovery is per
        topic: one may match a second after the other, and frames then lose their record)."""
        return self.raw_subscription.get_publisher_count() > 0 and \
            self.smoothed_subscription.get_publisher_count() > 0

    @staticmethod
    def stamp(msg) -> float:
        return round(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 6)

    def on_image(self, msg: Image) -> None:
        image = image_to_numpy(msg)
        self.frames[self.stamp(msg)] = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY,
                                                                    85])[1].tobytes()

    def on_raw(self, msg) -> None:
        self.raw[self.stamp(msg)] = results_from_msg(msg)

    def on_smoothed(self, msg) -> None:
        stamp = self.stamp(msg)
        # raw is attached in finish(): inference_node's result may arrive after this one.
        self.records[stamp] = FrameRecord(
            frame=0, stamp=stamp, raw=None, confirmed=results_from_msg(msg),
            latency_ms=round((time.time() - stamp) * 1e3, 2))


def finish(recorder: Recorder, demo: DemoInput, task: str, output: Path) -> dict:
    """Number frames by stamp, attach ground truth, write the video, JSON lines and figure."""
    if not recorder.frames:
        raise RuntimeError('no camera frames were received')
    # Every frame the recorder saw or got a result for (a best-effort frame it missed still
    # has its result); the video holds the frames it saw. An empty confirmed result for no
    # frame is smoothing_node's release after its input stopped (stamped "now"), not a frame.
    stamps = sorted(set(recorder.frames) | {
        stamp for stamp, record in recorder.records.items()
        if stamp in recorder.raw or record.confirmed})
    records: list[FrameRecord] = []
    writer = None
    last: FrameRecord | None = None
    inference_task = pipeline(task).inference_task
    # Frames are numbered by order, not by stamp x fps: the camera's pacer may skip a slot
    # after a slow frame (its stamps jump) while the video itself does not skip a frame.
    for index, stamp in enumerate(stamps):
        record = recorder.records.get(stamp)
        if record is None:  # a frame the newest-frame policy skipped: keep it, unprocessed
            record = FrameRecord(frame=index, stamp=stamp)
        record.frame, record.truth = index, demo.truth(index)
        if record.latency_ms is not None:
            record.raw = recorder.raw.get(stamp)  # None: never received (see summary)
            last = record
        records.append(record)
        if stamp not in recorder.frames:
            continue
        image = cv2.imdecode(np.frombuffer(recorder.frames[stamp], np.uint8), cv2.IMREAD_COLOR)
        if writer is None:
            writer = cv2.VideoWriter(str(output / 'annotated.mp4'),
                                     cv2.VideoWriter.fourcc(*'mp4v'), demo.fps,
                                     (image.shape[1], image.shape[0]))
        writer.write(draw_frame(image, last, inference_task))
    if writer is not None:
        writer.release()
    write_jsonl(output / 'results.jsonl', records)
    figures = summary(records, inference_task, demo.fps)
    title = f'{task.replace("_", " ")} on {demo.description}'
    summary_figure(output / 'summary.png', records, inference_task, figures, title)
    (output / 'summary.json').write_text(json.dumps(figures, indent=2))
    return figures


def run_demo(task: str, output: Path, max_seconds: float, given: str | None = None,
             fps: float | None = None) -> int:
    output.mkdir(parents=True, exist_ok=True)
    host_only_participant()
    keep_image_buffers()  # the recorder receives every frame
    demo = prepare_input(task, output, given, fps)
    print(f'[demo] {task}: {demo.description} -> {output}/', flush=True)
    domain = int(os.environ.get('ROS_DOMAIN_ID', 0)) or 1 + os.getpid() % 100
    env = node_environment(domain)
    recorder = Recorder(domain, task)
    # annotator_node draws image_annotated for a viewer (rviz, rqt_image_view) while the demo
    # runs; annotated.mp4 is drawn here, from the recorded frames and results.
    graph = pipeline(task, annotate=True)
    # The camera holds its first frame until inference_node and this recorder listen
    # (annotator_node subscribes to the camera only while a viewer watches image_annotated).
    parameters = {'camera_node': {'source': str(demo.video), 'loop': False,
                                  'end_action': 'exit', 'fps': demo.fps,
                                  'wait_for_subscribers': 2}}
    # Start the other nodes first, the camera once they are up: no frame is lost to discovery
    # or model loading.
    downstream = GraphProcesses(
        graph.subset('inference_node', 'smoothing_node', 'annotator_node'), env,
        parameters=parameters, log_dir=output / 'logs')
    camera = GraphProcesses(graph.subset('camera_node'), env, parameters=parameters,
                            log_dir=output / 'logs')
    try:
        downstream.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not downstream.exited() and \
                not recorder.listening():
            recorder.spin_for(0.2)
        recorder.spin_for(1.0)
        if downstream.exited():
            print(f'[demo] a node exited: {downstream.exited()}; see {output}/logs',
                  file=sys.stderr)
            return 1
        camera.start()
        start = last_print = time.monotonic()
        while time.monotonic() - start < max_seconds:
            recorder.spin_for(0.25)
            if camera.exited() or downstream.exited():
                recorder.spin_for(1.5)  # drain what is in flight
                break
            now = time.monotonic()
            if now - last_print >= 2.0:
                last_print = now
                progress(recorder, demo)
    except KeyboardInterrupt:
        print('[demo] interrupted: writing what was recorded', flush=True)
    finally:
        camera.stop()
        downstream.stop()
    progress(recorder, demo)
    figures = finish(recorder, demo, task, output)
    recorder.close()
    print('[demo] ' + ', '.join(f'{k}={v}' for k, v in figures.items()), flush=True)
    if figures['raw_missing']:
        print(f"[demo] warning: inference_node's result for {figures['raw_missing']} processed "
              'frames never reached the recorder (raw_received: false in results.jsonl; those '
              'frames are left out of raw_changes and of tools.evaluate.video score)',
              file=sys.stderr)
    print(f'[demo] wrote {output}/annotated.mp4, results.jsonl, summary.png, summary.json',
          flush=True)
    return 0


def progress(recorder: Recorder, demo: DemoInput) -> None:
    stamps = sorted(recorder.frames)
    results = sorted(recorder.records)
    span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    rate = (len(results) - 1) / (results[-1] - results[0]) if len(results) > 1 and \
        results[-1] > results[0] else 0.0
    latest = recorder.records[results[-1]] if results else None
    latency = np.median([recorder.records[s].latency_ms for s in results[-30:]]) \
        if results else float('nan')
    confirmed = ', '.join(f'#{r.track_id}' if isinstance(r, Detection) else r.label
                          for r in (latest.confirmed if latest else [])) or 'nothing'
    print(f'[demo] frames {len(stamps)} ({(len(stamps) - 1) / span if span else 0:.1f} Hz) | '
          f'results {len(results)} ({rate:.1f} Hz) | latency p50 {latency:.0f} ms | '
          f'confirmed: {confirmed}', flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.demo',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=TASKS, default='human_detection')
    parser.add_argument('--output', type=Path, help='default: output/<task>')
    parser.add_argument('--max-seconds', type=float, default=600.0,
                        help='stop after this many seconds of camera time (default 600)')
    parser.add_argument('--input', help='use this video, or folder of frames (played in name '
                        'order), instead of the embedded input')
    parser.add_argument('--fps', type=float, help="the input's frame rate (default: the "
                        "video's; for a folder, its MOTChallenge seqinfo.ini's, else 30)")
    args = parser.parse_args(argv)
    if args.fps is not None and not args.fps > 0:
        parser.error(f'--fps must be > 0, got {args.fps}')
    try:
        return run_demo(args.task, args.output or Path('output') / args.task, args.max_seconds,
                        args.input, args.fps)
    except KeyboardInterrupt:  # a second Ctrl-C while the outputs are written: no traceback
        print('[demo] interrupted again: outputs may be incomplete', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
