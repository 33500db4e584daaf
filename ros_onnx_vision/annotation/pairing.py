"""Pair each image with its raw result and its confirmed result, by header stamp.

Three streams arrive separately and in any order: images (the camera), raw results
(inference_node, one per processed frame: frames it skips have none) and confirmed results
(smoothing_node, exactly one per raw result, with the raw result's header). A frame is keyed by
its header: stamp seconds, nanoseconds and frame_id.

Images wait in a bounded buffer: the newest `max_frames`, and none older (by stamp) than
`max_age` seconds before the newest. When the raw result of a buffered image arrives, the pair
waits for the confirmed result of the same key up to `wait` seconds (monotonic, injectable
`clock`), and is then yielded with the confirmed result, or with None when none came. Nothing
is dropped silently: results whose image never came or is gone are counted as unmatched,
images evicted without a result as evicted (frames inference_node skipped, mostly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time
from typing import Generic, TypeVar

Key = tuple[int, int, str]  # header stamp sec, nanosec, frame_id
ImageT = TypeVar('ImageT')
ResultT = TypeVar('ResultT')

MAX_FRAMES = 30  # 1 s at 30 Hz
MAX_AGE_S = 1.0
WAIT_S = 0.3


def key_seconds(key: Key) -> float:
    return key[0] + key[1] * 1e-9


@dataclass(frozen=True)
class Paired(Generic[ImageT, ResultT]):
    """An image with its raw result and its confirmed result (None: none came in time)."""

    key: Key
    image: ImageT
    raw: ResultT
    confirmed: ResultT | None


@dataclass
class PairingCounts:
    """What happened to every message given to the pairing."""

    images: int = 0
    raw: int = 0
    confirmed: int = 0
    paired: int = 0  # yielded (image, raw, confirmed-or-None)
    without_confirmed: int = 0  # of those, yielded after `wait` with no confirmed result
    unmatched_raw: int = 0  # raw results whose image never came or was gone
    unmatched_confirmed: int = 0  # confirmed results with no raw result and image to join
    evicted: int = 0  # images evicted before a raw result came (skipped frames)
    duplicates: int = 0  # a message whose key was already waiting: the newer one replaced it
    before_start: int = 0  # results older than the first image (since start or clear())

    @property
    def unmatched(self) -> int:
        return self.unmatched_raw + self.unmatched_confirmed


@dataclass
class _Waiting(Generic[ResultT]):
    result: ResultT
    since: float  # clock time it started waiting


class StampPairing(Generic[ImageT, ResultT]):
    """Joins images, raw results and confirmed results that share a header key.

    `confirmed=False`: confirmed results are not expected; a pair is yielded as soon as image
    and raw result are both there (with confirmed None). Every add_*() and poll() returns the
    pairs completed by it, oldest first; call poll() periodically for those whose wait ended.
    """

    def __init__(self, *, max_frames: int = MAX_FRAMES, max_age: float = MAX_AGE_S,
                 wait: float = WAIT_S, confirmed: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_frames < 1 or max_age <= 0 or wait < 0:
            raise ValueError(f'max_frames {max_frames} must be >= 1, max_age {max_age} > 0, '
                             f'wait {wait} >= 0')
        self.max_frames, self.max_age, self.wait = max_frames, max_age, wait
        self.expect_confirmed = confirmed
        self.clock = clock
        self.counts = PairingCounts()
        self._images: dict[Key, ImageT] = {}
        self._raw: dict[Key, _Waiting[ResultT]] = {}  # raw results: no image yet, or with one
        self._confirmed: dict[Key, _Waiting[ResultT]] = {}  # waiting for their raw result
        self._first: float | None = None  # stamp of the first image since start or clear()
        self._newest = -float('inf')  # newest image stamp

    # --- input ----------------------------------------------------------------------------
    def add_image(self, key: Key, image: ImageT) -> list[Paired[ImageT, ResultT]]:
        self.counts.images += 1
        stamp = key_seconds(key)
        if self._first is None:
            self._first = stamp
        if key in self._images:
            self.counts.duplicates += 1
        self._images[key] = image
        self._newest = max(self._newest, stamp)
        return self._evict() + self._complete(key)

    def add_raw(self, key: Key, raw: ResultT) -> list[Paired[ImageT, ResultT]]:
        self.counts.raw += 1
        if self._before_start(key):
            return self.poll()
        if key in self._raw:
            self.counts.duplicates += 1
        self._raw[key] = _Waiting(raw, self.clock())
        self._bound(self._raw, 'unmatched_raw')
        return self._complete(key)

    def add_confirmed(self, key: Key, confirmed: ResultT) -> list[Paired[ImageT, ResultT]]:
        self.counts.confirmed += 1
        if not self.expect_confirmed or self._before_start(key):
            return self.poll()
        if key in self._confirmed:
            self.counts.duplicates += 1
        self._confirmed[key] = _Waiting(confirmed, self.clock())
        self._bound(self._confirmed, 'unmatched_confirmed')
        return self._complete(key)

    def poll(self) -> list[Paired[ImageT, ResultT]]:
        """Pairs whose wait for a confirmed result ended; results that waited in vain for
        their image (or raw result) are counted as unmatched."""
        now = self.clock()
        out: list[Paired[ImageT, ResultT]] = []
        for key in sorted(k for k, w in self._raw.items() if now - w.since >= self.wait):
            waiting = self._raw.pop(key)
            if key in self._images:
                self.counts.without_confirmed += 1
                out.append(self._yield(key, waiting.result, None))
            else:
                self.counts.unmatched_raw += 1
        for key in [k for k, w in self._confirmed.items() if now - w.since >= self.wait]:
            del self._confirmed[key]
            self.counts.unmatched_confirmed += 1
        return out

    def clear(self) -> None:
        """Forget everything waiting (not counted): e.g. while nobody wants the output."""
        self._images.clear()
        self._raw.clear()
        self._confirmed.clear()
        self._first, self._newest = None, -float('inf')

    @property
    def buffered(self) -> int:
        """Images in the buffer."""
        return len(self._images)

    # --- internals ------------------------------------------------------------------------
    def _before_start(self, key: Key) -> bool:
        """A result older than the first image: its image came before this pairing listened.
        With no image yet, a result waits: its image may still come."""
        if self._first is None or key_seconds(key) >= self._first:
            return False
        self.counts.before_start += 1
        return True

    def _complete(self, key: Key) -> list[Paired[ImageT, ResultT]]:
        out = self.poll()
        raw = self._raw.get(key)
        if raw is None or key not in self._images:
            return out
        confirmed = self._confirmed.get(key)
        if confirmed is not None or not self.expect_confirmed:
            del self._raw[key]
            self._confirmed.pop(key, None)
            out.append(self._yield(key, raw.result, confirmed.result if confirmed else None))
        return out

    def _yield(self, key: Key, raw: ResultT, confirmed: ResultT | None
               ) -> Paired[ImageT, ResultT]:
        self.counts.paired += 1
        return Paired(key, self._images.pop(key), raw, confirmed)

    def _evict(self) -> list[Paired[ImageT, ResultT]]:
        """Keep the newest max_frames images, none older than max_age before the newest.

        An evicted image whose raw result is waiting for the confirmed one is yielded now,
        without it; one without a raw result is counted as evicted.
        """
        oldest_kept = self._newest - self.max_age
        gone = [k for k in self._images if key_seconds(k) < oldest_kept]
        excess = len(self._images) - len(gone) - self.max_frames
        if excess > 0:
            gone += sorted((k for k in self._images if key_seconds(k) >= oldest_kept),
                           key=key_seconds)[:excess]
        out: list[Paired[ImageT, ResultT]] = []
        for key in sorted(gone, key=key_seconds):
            waiting = self._raw.pop(key, None)
            if waiting is None:
                del self._images[key]
                self.counts.evicted += 1
            else:
                self.counts.without_confirmed += 1
                out.append(self._yield(key, waiting.result, None))
        return out

    def _bound(self, waiting: dict[Key, _Waiting[ResultT]], counter: str) -> None:
        while len(waiting) > self.max_frames:
            del waiting[min(waiting, key=key_seconds)]
            setattr(self.counts, counter, getattr(self.counts, counter) + 1)
