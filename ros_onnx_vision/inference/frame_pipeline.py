"""Newest-frame processing in three overlapped stages, each in its own thread.

    submit(frame) -> prepare (conversion, pre-processing) -> run (the model) -> deliver
                     (decoding, publishing)

Before each of the first two stages a frame waits in a single slot: a newer frame replaces
the waiting one (counted as skipped), so latency never grows. Every frame that ran is
delivered, in order. While the model runs one frame, the next one is prepared and the previous
one delivered, so the model is the only thing between two runs: on a machine that gives the
model one core, the model's rate is the pipeline's rate. No ROS here: inference_node feeds it
from its subscription callback, which stays cheap (a frame is only stored there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import threading
from typing import Any, Generic, TypeVar

Frame = TypeVar('Frame')


@dataclass
class FrameCounts:
    """What happened to the submitted frames (a frame in flight is in none yet)."""

    received: int = 0
    processed: int = 0  # delivered
    skipped: int = 0  # replaced by a newer frame while waiting for prepare or run
    errors: int = 0  # a stage raised


class NewestFramePipeline(Generic[Frame]):
    """prepare(frame) -> run(prepared) -> deliver(frame, ran), newest frame first.

    A stage that raises drops its frame: `on_error(frame, error)` is called and the frame
    counted in `counts.errors`; the pipeline goes on. After :meth:`stop` nothing more is
    delivered, and errors raised while stopping are neither counted nor reported (a publish
    cut short by the shutdown is not a bad frame).
    """

    def __init__(self, prepare: Callable[[Frame], Any], run: Callable[[Any], Any],
                 deliver: Callable[[Frame, Any], None],
                 on_error: Callable[[Frame, Exception], None], name: str = 'frames') -> None:
        self.counts = FrameCounts()
        self._prepare, self._run, self._deliver, self._on_error = prepare, run, deliver, on_error
        lock = threading.Lock()
        # One lock, one condition per stage: a stage is woken only when its input changes.
        self._lock = lock
        self._incoming_ready = threading.Condition(lock)
        self._prepared_ready = threading.Condition(lock)
        self._ran_ready = threading.Condition(lock)
        self._incoming: Frame | None = None
        self._has_incoming = False
        self._prepared: tuple[Frame, Any] | None = None
        self._ran: deque[tuple[Frame, Any]] = deque()
        self._stopping = False
        self._threads = [threading.Thread(target=loop, name=f'{name}-{stage}', daemon=True)
                         for stage, loop in (('prepare', self._prepare_loop),
                                             ('run', self._run_loop),
                                             ('deliver', self._deliver_loop))]
        for thread in self._threads:
            thread.start()

    def submit(self, frame: Frame) -> None:
        """Hand over the newest frame; one still waiting for preparation is skipped."""
        with self._lock:
            if self._stopping:
                return
            self.counts.received += 1
            if self._has_incoming:
                self.counts.skipped += 1
            self._incoming, self._has_incoming = frame, True
            self._incoming_ready.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the three threads; frames still waiting are discarded."""
        with self._lock:
            self._stopping = True
            self._incoming, self._has_incoming, self._prepared = None, False, None
            self._ran.clear()
            for condition in (self._incoming_ready, self._prepared_ready, self._ran_ready):
                condition.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _prepare_loop(self) -> None:
        while True:
            with self._lock:
                self._incoming_ready.wait_for(lambda: self._has_incoming or self._stopping)
                if self._stopping:
                    return
                frame, self._incoming, self._has_incoming = self._incoming, None, False
            try:
                prepared = self._prepare(frame)
            except Exception as error:  # noqa: BLE001 - one bad frame must not stop the rest
                self._failed(frame, error)
                continue
            with self._lock:
                if self._stopping:
                    return
                if self._prepared is not None:
                    self.counts.skipped += 1  # the model was busy: only the newest one waits
                self._prepared = (frame, prepared)
                self._prepared_ready.notify()

    def _run_loop(self) -> None:
        while True:
            with self._lock:
                self._prepared_ready.wait_for(
                    lambda: self._prepared is not None or self._stopping)
                if self._stopping:
                    return
                assert self._prepared is not None
                (frame, prepared), self._prepared = self._prepared, None
            try:
                ran = self._run(prepared)
            except Exception as error:  # noqa: BLE001
                self._failed(frame, error)
                continue
            with self._lock:
                if self._stopping:
                    return
                self._ran.append((frame, ran))
                self._ran_ready.notify()

    def _deliver_loop(self) -> None:
        while True:
            with self._lock:
                self._ran_ready.wait_for(lambda: bool(self._ran) or self._stopping)
                if self._stopping:
                    return
                frame, ran = self._ran.popleft()
            try:
                self._deliver(frame, ran)
            except Exception as error:  # noqa: BLE001
                self._failed(frame, error)
                continue
            with self._lock:
                self.counts.processed += 1

    def _failed(self, frame: Frame, error: Exception) -> None:
        with self._lock:
            if self._stopping:
                return
            self.counts.errors += 1
        self._on_error(frame, error)
