"""main() of every node: the shipped DDS profile, init, spin, a clean stop on any signal."""

from __future__ import annotations

from collections.abc import Callable
import signal

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ros_onnx_vision.ros.dds_profile import apply_fastdds_profile
from ros_onnx_vision.ros.malloc_tuning import keep_image_buffers
from ros_onnx_vision.ros.vision_node import VisionNode


class _StopRequest:
    """SIGINT/SIGTERM handler that only records the request; run_node() then stops in order.

    rclpy's own handler shuts the context down inside the signal, while the capture and
    inference threads may be publishing ("publisher's context is invalid") and raises
    KeyboardInterrupt wherever the main thread is, e.g. inside destroy_node() when Ctrl-C in a
    terminal and `ros2 launch` each send one SIGINT. Recording the request instead lets the
    node stop its threads while the context is still valid, whatever number of signals come.
    """

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = self.signal or signal.Signals(signum).name

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            # A signal ignored from the start stays ignored, as Python itself does: e.g.
            # SIGINT of a job that a shell without job control started in the background.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, self)

    @staticmethod
    def ignore_from_now() -> None:
        """Ignore further signals while the process exits: at interpreter finalization Python
        resets its handlers to the default, and a late second Ctrl-C would then kill the
        process (exit -2) instead of letting it end with its status."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def run_node(factory: Callable[[], VisionNode], name: str, *,
             args: list[str] | None = None) -> int:
    """Standard main(): shipped DDS profile, init, spin, clean shutdown on Ctrl-C or SIGTERM.

    Any number of SIGINT/SIGTERM ends the process with status 0 and no traceback: the spin
    loop stops, destroy_node() stops the node's threads and publishers, then the context is
    shut down. The process also ends once the node sets its attribute `finished`, with the
    node's `exit_code` (default 0).
    A ValueError/RuntimeError raised while building the node (bad parameters, bad source) is
    logged as one clear line and the process exits with status 1, without a traceback.
    """
    apply_fastdds_profile()
    keep_image_buffers()  # before any frame is received (see there)
    stop = _StopRequest()
    stop.install()  # before init: a signal during a slow start is kept, not a traceback
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    executor = None
    status = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while stop.signal is None and rclpy.ok() and not node.finished:
            executor.spin_once(timeout_sec=0.1)
        status = node.exit_code
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, RuntimeError, OSError, InvalidParameterValueException,
            InvalidParameterTypeException) as error:
        if stop.signal is not None or not rclpy.ok():
            pass  # a callback raced with the shutdown: a normal exit
        else:
            rclpy.logging.get_logger(name).fatal(str(error))
            status = 1
    except SystemExit as stop_exit:
        status = int(stop_exit.code or 0)
    finally:
        if stop.signal is not None and node is not None:
            node.get_logger().info(f'{stop.signal}: shutting down')
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()  # stops the node's threads while the context is valid
        rclpy.try_shutdown()
        stop.ignore_from_now()
    return status
