"""Tests of the rate-aware voting logic behind smoothing_node (pure Python, no ROS)."""

import itertools
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from ros_onnx_vision.geometry import iou_matrix
from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.label_voter import LabelVoter
from ros_onnx_vision.smoothing.rate import confirmation_frames, FrameRateEstimator, StampStatus
from ros_onnx_vision.smoothing.tracker import (associate, camera_shift, DetectionTracker,
                                               hungarian)

NOMINAL = {10: 5, 15: 8, 30: 15, 60: 30}


def stamps(fps: float, count: int, start: float = 0.0) -> list[float]:
    return [start + i / fps for i in range(count)]


def feed(voter: LabelVoter, times, labels, score: float = 0.9):
    return [voter.update(t, label, score) for t, label in zip(times, labels)]


def first_confirmed(states, label='cat') -> int | None:
    """1-based index of the first frame whose state confirms label."""
    return next((i + 1 for i, s in enumerate(states) if s.label == label), None)


# --- confirmation_frames and the estimator -------------------------------------------------

@pytest.mark.parametrize('fps, window, expected', [
    (10, 0.5, 5), (15, 0.5, 8), (30, 0.5, 15), (60, 0.5, 30), (25, 0.5, 13), (50, 0.5, 25),
    (1, 0.5, 1), (0.1, 0.5, 1), (1000, 0.5, 500), (14.99999993, 0.5, 8), (14.9, 0.5, 7)])
def test_confirmation_frames_rounds_half_up(fps, window, expected):
    assert confirmation_frames(fps, window) == expected


@pytest.mark.parametrize('fps, window', [(0, 0.5), (-1, 0.5), (math.nan, 0.5), (30, 0),
                                         (30, math.inf)])
def test_confirmation_frames_rejects_bad_input(fps, window):
    with pytest.raises(ValueError, match='must be a finite number > 0'):
        confirmation_frames(fps, window)


def test_estimator_needs_two_frames_and_is_exact():
    est = FrameRateEstimator()
    assert est.add(1e6) is StampStatus.ACCEPTED and est.fps is None
    est.add(1e6 + 0.1)
    assert est.fps == pytest.approx(10.0)


def test_backwards_and_duplicates_are_ignored_and_counted():
    est = FrameRateEstimator()
    statuses = []
    for i, t in enumerate(stamps(30, 60, start=100.0)):
        statuses.append(est.add(t))
        if i % 7 == 3:
            statuses.append(est.add(t))  # duplicate
        if i % 11 == 5:
            statuses.append(est.add(t - 0.05))  # out of order
    assert est.duplicates == statuses.count(StampStatus.DUPLICATE) == 9
    assert est.backwards == statuses.count(StampStatus.BACKWARDS) == 5
    assert est.resets == 0
    assert est.fps == pytest.approx(30.0, rel=1e-6)


def test_large_backward_jump_is_a_clock_restart():
    est = FrameRateEstimator(window_s=2.0)
    for t in stamps(30, 30, start=500.0):
        est.add(t)
    assert est.add(3.0) is StampStatus.RESET
    assert (est.resets, est.backwards, est.fps) == (1, 1, None)
    est.add(3.1)
    assert est.fps == pytest.approx(10.0)


def test_gap_longer_than_window_recovers_at_once():
    est = FrameRateEstimator(window_s=2.0)
    for t in stamps(30, 60):
        est.add(t)
    est.add(10.0)
    assert est.fps == pytest.approx(30.0)  # held until a new interval exists
    est.add(10.1)
    assert est.fps == pytest.approx(10.0)


def test_gap_shorter_than_window_is_gated_out_but_dropped_frames_count():
    est = FrameRateEstimator(window_s=2.0)
    for t in stamps(30, 60):
        est.add(t)
    last = 59 / 30
    for t in stamps(30, 10, start=last + 1.2):  # a 1.2 s stall
        est.add(t)
    assert est.fps == pytest.approx(30.0)
    # One frame in 10 dropped: results arrive at 27 per second, and that is the rate.
    est = FrameRateEstimator(window_s=2.0)
    for t in [t for i, t in enumerate(stamps(30, 60)) if i % 10 != 4]:
        est.add(t)
    assert est.fps == pytest.approx(27.0, rel=0.03)


@pytest.mark.parametrize('camera_fps, processed_hz, expected_n', [
    (10.0, (6.0, 8.0), 4), (30.0, (12.0, 16.0), 7), (30.0, (18.0, 24.0), 11)])
def test_newest_frame_pipeline_slower_than_its_camera_confirms_in_half_a_second(
        camera_fps, processed_hz, expected_n):
    # Each result takes 1 / U(processed_hz) s, then the newest camera frame is taken: the
    # intervals are one or two camera periods, and N must follow the rate results arrive at.
    rng = random.Random(0)
    times, free_at = [], 0.0
    while len(times) < 60:
        tick = max(math.floor(free_at * camera_fps + 1e-9), len(times) and
                   round(times[-1] * camera_fps) + 1)
        times.append(tick / camera_fps)
        free_at = max(free_at, times[-1]) + 1 / rng.uniform(*processed_hz)
    voter = LabelVoter()
    states = feed(voter, [1e3 + t for t in times], ['cat'] * len(times))
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert voter.fps == pytest.approx(rate, rel=0.1)
    assert states[-1].n == expected_n
    assert expected_n / rate == pytest.approx(0.5, abs=0.1)  # N results span half a second


def test_rejects_non_finite_stamp():
    with pytest.raises(ValueError, match='stamp must be a finite number'):
        FrameRateEstimator().add(math.nan)


# --- LabelVoter ---------------------------------------------------------------------------

@pytest.mark.parametrize('start', [0.0, 5.0, 1e3, 1e6, 1.7e9])
@pytest.mark.parametrize('fps', sorted(NOMINAL))
def test_stable_label_confirmed_after_exactly_n_frames(fps, start):
    voter = LabelVoter()
    states = feed(voter, stamps(fps, 100, start), ['cat'] * 100)
    assert first_confirmed(states) == NOMINAL[fps]
    assert states[NOMINAL[fps] - 1].changed and states[NOMINAL[fps] - 1].n == NOMINAL[fps]
    assert sum(s.changed for s in states) == 1


def test_first_frame_never_confirms_even_when_n_is_1():
    voter = LabelVoter()
    states = feed(voter, stamps(2, 3), ['cat'] * 3)  # 2 fps * 0.5 s -> N = 1
    assert [s.label for s in states] == [None, 'cat', 'cat']


def test_default_fps_is_used_until_measured():
    voter = LabelVoter(default_fps=30)
    assert voter.update(0.0, 'cat', 0.9).n == 15
    states = feed(voter, stamps(10, 10)[1:], ['cat'] * 9)
    # One interval is no measurement yet (it could be a stall): measured 10 fps takes over on
    # frame 3, from two intervals.
    assert [s.n for s in states[:2]] == [15, 5]
    assert first_confirmed(states) + 1 == 5


# Frame 1, a 0.34 s stall (a loaded machine at the start of the stream), then 10 Hz.
STALLED_START = [0.0] + [0.34 + i / 10 for i in range(15)]


def test_a_stall_as_the_first_interval_does_not_shrink_n():
    voter = LabelVoter()
    states = feed(voter, STALLED_START, ['cat'] * len(STALLED_START))
    # From that one interval alone, 2.9 fps would give N = 1 and confirm frame 2.
    assert states[1].fps == pytest.approx(1 / 0.34) and states[1].n is None
    assert states[2].n == 5 and first_confirmed(states) == 5
    # A one-frame false positive on frame 2 of such a stream is never confirmed either.
    voter = LabelVoter()
    states = feed(voter, STALLED_START, [None, 'dog'] + [None] * 14)
    assert all(s.label is None for s in states)


@pytest.mark.parametrize('interval, confirmed', [(0.5, True), (0.47, True), (0.4, False)])
def test_a_single_interval_confirms_only_when_it_spans_the_window(interval, confirmed):
    voter = LabelVoter()  # window 0.5 s: one interval of ~0.5 s or more is N = 1 at any rate
    states = feed(voter, [100.0, 100.0 + interval], ['cat', 'cat'])
    assert (states[1].label == 'cat') is confirmed and states[1].m == 1
    # Both frames must agree: a single one never confirms, not even where N is 1.
    voter = LabelVoter()
    assert feed(voter, [100.0, 100.0 + interval], [None, 'cat'])[1].label is None


def test_single_outlier_neither_confirms_nor_releases():
    voter = LabelVoter()
    labels = ['dog'] + ['cat'] * 20 + ['dog'] + ['cat'] * 20 + [None] + ['cat'] * 5
    states = feed(voter, stamps(30, len(labels)), labels)
    assert all(s.label != 'dog' for s in states)
    assert first_confirmed(states) == 1 + 15  # the outlier frame does not count
    assert all(s.label == 'cat' for s in states[15:])
    assert sum(s.changed for s in states) == 1


def test_outlier_before_confirmation_restarts_the_count():
    voter = LabelVoter()
    labels = ['cat'] * 10 + ['dog'] + ['cat'] * 20
    assert first_confirmed(feed(voter, stamps(30, len(labels)), labels)) == 11 + 15


# Default M = N // 2 (issue 20: a label shown no more is released within half a window).
@pytest.mark.parametrize('release_frames, expected', [(None, 7), (1, 1), (4, 4), (40, 40)])
def test_release_after_m_consecutive_misses(release_frames, expected):
    voter = LabelVoter(release_frames=release_frames)
    labels = ['cat'] * 15 + [None] * 50
    states = feed(voter, stamps(30, len(labels)), labels)
    released = next(i for i, s in enumerate(states[15:]) if s.label is None) + 1
    assert released == expected and states[15 + expected - 1].changed
    assert voter.m == expected


@pytest.mark.parametrize('fps', sorted(NOMINAL))
def test_label_released_within_half_a_window_but_not_by_one_outlier(fps):
    n = NOMINAL[fps]
    voter = LabelVoter()
    labels = ['cat'] * (n + 2) + ['dog'] + ['cat'] * 3 + [None] * n + ['dog'] * n
    states = feed(voter, stamps(fps, len(labels)), labels)
    assert all(s.label == 'cat' for s in states[n - 1:n + 6])
    gone = [s.label for s in states[n + 6:]]
    assert gone.index(None) + 1 == max(2, n // 2) <= max(2, n / 2)
    assert gone.count('cat') == max(2, n // 2) - 1 and gone[-1] == 'dog'


def test_low_score_counts_as_no_result():
    voter = LabelVoter(min_score=0.5, release_frames=3)
    feed(voter, stamps(30, 15), ['cat'] * 15)
    assert voter.label == 'cat'
    states = [voter.update(t, 'cat', 0.2) for t in stamps(30, 3, start=0.5)]
    assert [s.label for s in states] == ['cat', 'cat', None]


@pytest.mark.parametrize('release_frames, gap', [(None, 8), (30, 0), (5, 10)])
def test_different_label_replaces_after_n_frames(release_frames, gap):
    voter = LabelVoter(release_frames=release_frames)
    labels = ['cat'] * 20 + ['dog'] * 20
    states = feed(voter, stamps(30, len(labels)), labels)[20:]
    assert first_confirmed(states, 'dog') == 15
    # M >= N: direct switch; M < N: released after M frames, nothing until N.
    assert [s.label for s in states[:14]].count(None) == gap
    assert [s.label for s in states[:14]].count('cat') == 14 - gap


def test_rate_change_mid_stream_changes_n():
    voter = LabelVoter()
    times = stamps(30, 90) + stamps(10, 40, start=3.0)
    labels = ['cat'] * 90 + ['dog'] * 40
    states = feed(voter, times, labels)
    assert states[89].n == 15 and states[-1].n == 5
    voter2 = LabelVoter(release_frames=1)
    states = feed(voter2, times, ['cat'] * 110 + [None] + ['dog'] * 19)
    assert first_confirmed(states[111:], 'dog') == 5


def test_gap_longer_than_timeout_releases_on_update():
    voter = LabelVoter(timeout_s=1.0)
    feed(voter, stamps(30, 20), ['cat'] * 20)
    state = voter.update(20 / 30 + 1.5, 'cat', 0.9)
    assert state.label is None and state.changed and state.streak == 1
    states = feed(voter, stamps(30, 14, start=20 / 30 + 1.5 + 1 / 30), ['cat'] * 14)
    assert first_confirmed(states) == 14  # the frame after the gap counted as the first


def test_check_timeout_from_timer():
    voter = LabelVoter(timeout_s=1.0)
    feed(voter, stamps(30, 20, start=1e6), ['cat'] * 20)
    last = 1e6 + 19 / 30
    assert not voter.check_timeout(last + 0.9).changed and voter.label == 'cat'
    assert voter.check_timeout(last - 5.0).label == 'cat'  # a timer clock behind the stamps
    state = voter.check_timeout(last + 1.1)
    assert state.changed and state.label is None
    assert not voter.check_timeout(last + 2.0).changed


def test_duplicates_and_backwards_do_not_vote():
    voter = LabelVoter()
    states = []
    for t in stamps(30, 15):
        states.append(voter.update(t, 'cat', 0.9))
        states.append(voter.update(t, 'cat', 0.9))
        states.append(voter.update(t - 0.01, 'dog', 0.9))
    assert first_confirmed(states) == 3 * 15 - 2
    assert (voter.duplicates, voter.backwards) == (15, 15)
    assert voter.fps == pytest.approx(30.0)


def test_clock_restart_releases():
    voter = LabelVoter()
    feed(voter, stamps(30, 20, start=100.0), ['cat'] * 20)
    state = voter.update(0.0, 'cat', 0.9)
    assert state.label is None and state.changed and voter.resets == 1


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('fps', sorted(NOMINAL))
def test_jittered_stamps_give_n_within_one(fps, seed):
    rng = random.Random(seed)
    times = [1e6 + (i + rng.uniform(-0.2, 0.2)) / fps for i in range(4 * fps)]
    voter = LabelVoter()
    states = feed(voter, times, ['cat'] * len(times))
    assert abs(first_confirmed(states) - NOMINAL[fps]) <= 1
    assert all(abs(s.n - NOMINAL[fps]) <= 1 for s in states[fps:])


def test_describe_and_state():
    voter = LabelVoter()
    assert 'fps=none' in voter.describe()
    feed(voter, stamps(30, 15), ['cat'] * 15)
    assert voter.describe().startswith('label=cat score=0.90 fps=30.0 n=15 m=7')
    assert voter.state.label == 'cat' and not voter.state.changed


@pytest.mark.parametrize('kwargs, message', [
    ({'window_s': 0}, 'window_s must be a finite number > 0'),
    ({'window_s': -0.5}, 'window_s must be a finite number > 0'),
    ({'timeout_s': 0}, 'timeout_s must be a finite number > 0'),
    ({'rate_window_s': math.inf}, 'window_s must be a finite number > 0'),
    ({'release_frames': 0}, 'release_frames must be an integer >= 1'),
    ({'release_frames': 2.5}, 'release_frames must be an integer >= 1'),
    ({'default_fps': 0}, 'default_fps must be a finite number > 0'),
    ({'min_score': math.nan}, 'min_score must be a finite number'),
])
def test_voter_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LabelVoter(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    ({'min_iou': 0}, 'min_iou must be a finite number > 0'),
    ({'min_iou': 1.5}, r'min_iou must be in \(0, 1\]'),
    ({'smoothing': 1.0}, r'smoothing must be in \[0, 1\)'),
    ({'smoothing': -0.1}, r'smoothing must be in \[0, 1\)'),
    ({'release_frames': -1}, 'release_frames must be an integer >= 1'),
])
def test_tracker_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectionTracker(**kwargs)


# --- association --------------------------------------------------------------------------

def greedy(weight: np.ndarray) -> list[tuple[int, int]]:
    """First-come association by descending IoU, as the optimal one must beat."""
    pairs, rows, cols = [], set(), set()
    for t, d in sorted(np.ndindex(weight.shape), key=lambda p: -weight[p]):
        if weight[t, d] > 0 and t not in rows and d not in cols:
            pairs.append((t, d))
            rows.add(t)
            cols.add(d)
    return sorted(pairs)


A, B = (0, 0, 10, 10), (6, 0, 16, 10)
X, Y = (0, 0, 12, 10), (-3, 0, 9, 10)  # X fits A best, but B can only take X


def test_hungarian_beats_greedy_on_crafted_case():
    iou = iou_matrix([A, B], [X, Y])
    weight = np.where(iou >= 0.3, iou, 0)
    assert greedy(weight) == [(0, 0)]  # B left unmatched
    # IoU alone (max_distance 0), as the greedy rule above
    assert associate([A, B], ['p', 'p'], [X, Y], ['p', 'p'], 0.3, 0.0) == [(0, 1), (1, 0)]


def test_tracker_keeps_both_ids_where_greedy_would_not():
    tracker = DetectionTracker()
    for t in stamps(30, 15):
        confirmed = tracker.update(t, [Detection('p', 0.9, A), Detection('p', 0.9, B)])
    assert [c.id for c in confirmed] == ['1', '2']
    confirmed = tracker.update(0.5, [Detection('p', 0.9, X), Detection('p', 0.8, Y)])
    assert [(c.id, c.box, c.misses) for c in confirmed] == [('1', Y, 0), ('2', X, 0)]
    assert len(tracker.tracks) == 2


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.data())
def test_hungarian_is_optimal(rows, cols, data):
    cost = np.array(data.draw(st.lists(st.integers(-20, 20), min_size=rows * cols,
                                       max_size=rows * cols)), dtype=float).reshape(rows, cols)
    pairs = hungarian(cost)
    assert len(pairs) == min(rows, cols)
    assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
    if rows <= cols:
        best = min(sum(cost[r, c] for r, c in enumerate(p))
                   for p in itertools.permutations(range(cols), rows))
    else:
        best = min(sum(cost[r, c] for c, r in enumerate(p))
                   for p in itertools.permutations(range(rows), cols))
    assert sum(cost[r, c] for r, c in pairs) == pytest.approx(best)


# --- DetectionTracker ---------------------------------------------------------------------

def person(x: float, y: float, w: float, h: float, score: float = 0.9) -> Detection:
    return Detection('person', score, (x, y, x + w, y + h))


def test_people_crossing_keep_their_ids():
    tracker = DetectionTracker()
    history = []
    for i, t in enumerate(stamps(30, 60)):
        # A near person (big box) walks left, a far one (small box) right; boxes cross.
        near, far = person(300 - 5 * i, 80, 60, 150), person(5 * i, 100, 40, 100)
        history.append({c.id: c.box for c in tracker.update(t, [far, near])})
    assert all(h == {} for h in history[:14])
    assert all(set(h) == {'1', '2'} for h in history[14:])
    assert all(h['1'][2] - h['1'][0] == 40 and h['2'][2] - h['2'][0] == 60 for h in history[14:])
    assert len(tracker.tracks) == 2


def test_a_stall_as_the_first_interval_confirms_no_track_early():
    tracker = DetectionTracker()
    outputs = [tracker.update(t, [person(100, 100, 50, 100)]) for t in STALLED_START]
    assert [len(out) for out in outputs[:4]] == [0] * 4 and outputs[4][0].id == '1'


def test_box_seen_in_one_frame_only_is_never_published():
    tracker = DetectionTracker()
    for i, t in enumerate(stamps(30, 60)):
        dets = [person(100, 100, 50, 100)]
        if i in (20, 40):
            dets.append(person(400, 100, 50, 100, 0.99))
        assert all(c.id == '1' for c in tracker.update(t, dets))
    assert [c.id for c in tracker.confirmed] == ['1']


@pytest.mark.parametrize('hidden, outcome', [(14, 'at once'), (15, 'regained'),
                                             (89, 'regained'), (90, 'new id')])
def test_occlusion_keeps_the_id_for_six_m(hidden, outcome):
    tracker = DetectionTracker()  # 30 fps -> N = M = 15: remembered until 6 M = 90 misses (3 s)
    frames = [[person(100 + i, 100, 50, 100)] for i in range(20)] + [[]] * hidden
    # Back where it was lost plus the walk of a short gap: a person who stood behind someone
    # (a memory does not extrapolate seconds of walking).
    back_x = 120 + min(hidden, 14)
    frames += [[person(back_x + i, 100, 50, 100)] for i in range(20)]
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    during, back = outputs[20:20 + hidden], outputs[20 + hidden:]
    assert all([c.id for c in out] == ['1'] for out in outputs[14:23])
    # Published at its prediction for G = 3 misses, then not until seen again.
    assert [out[0].misses for out in during[:3]] == list(range(1, 4))
    assert all(out[0].predicted and abs(out[0].box[0] - 120 - k) < 1
               for k, out in enumerate(during[:3]))
    assert all(out == [] for out in during[3:])
    if outcome == 'at once':  # missed fewer than M times: published on its first match
        assert all([c.id for c in out] == ['1'] for out in back)
    elif outcome == 'regained':  # released after M misses; back on its 2nd match in a row
        assert back[0] == [] and all([c.id for c in out] == ['1'] for out in back[1:])
    else:  # forgotten after 6 M misses: a new person, confirmed after N frames
        assert all(out == [] for out in back[:14]) and [c.id for c in back[14]] == ['2']
    assert [(t.id, t.misses, t.confirmed) for t in tracker.tracks] == [(
        '2' if outcome == 'new id' else '1', 0, True)]


@pytest.mark.parametrize('hidden, coasted', [(0, True), (40, False)])
def test_a_track_regained_after_seconds_away_is_not_coasted_at_once(hidden, coasted):
    # Seen 20 frames, away `hidden` frames (released after M = 15, still remembered), seen 3
    # frames (regained: published on the 2nd), then missed once: only a track seen on half
    # its recent window is bridged at its prediction.
    tracker = DetectionTracker()  # 30 fps -> N = M = 15, G = 3
    frames = [[person(100, 100, 50, 100)] for _ in range(20)] + [[]] * hidden
    frames += [[person(100, 100, 50, 100)] for _ in range(3)] + [[]]
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert [c.id for c in outputs[-2]] == ['1']
    assert [c.id for c in outputs[-1]] == (['1'] if coasted else [])
    assert [t.id for t in tracker.tracks] == ['1']  # remembered either way


@pytest.mark.parametrize('shake_px, coasted', [(0, True), (25, False)])
def test_a_missed_person_is_coasted_only_on_a_steady_camera(shake_px, coasted):
    # Three people; the camera moves the whole picture by +-shake_px each frame (boxes 50 px
    # wide). Motion compensation keeps the predictions on them, but a coasted box on a
    # shaking camera is a guess, so person 3's missed frame is not bridged there.
    tracker = DetectionTracker()  # 30 fps -> N = 15, G = 3
    frames = []
    for i in range(21):
        dx = shake_px * (i % 2)
        frames.append([person(100 + 100 * k + dx, 100, 50, 100) for k in range(3)])
    frames[20] = frames[20][:2]
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert sorted(c.id for c in outputs[19]) == ['1', '2', '3']
    assert sorted(c.id for c in outputs[20]) == (['1', '2', '3'] if coasted else ['1', '2'])


def test_a_one_frame_false_positive_where_a_released_track_was_is_never_published():
    tracker = DetectionTracker()  # 30 fps -> N = M = 15
    frames = [[person(100, 100, 50, 100)] for _ in range(20)] + [[]] * 28
    frames[37] = frames[42] = [person(100, 100, 50, 100)]  # single frames, after M misses
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert all(out == [] for out in outputs[23:])
    assert [(t.id, t.confirmed) for t in tracker.tracks] == [('1', False)]  # still remembered


def test_a_coasted_box_needs_predictions_that_landed():
    # The box jumps 30 px back and forth each frame (a shaking camera, one person): its
    # constant-velocity prediction misses the next box, so a missed frame is not coasted.
    tracker = DetectionTracker()  # 30 fps -> N = 15, G = 3
    frames = [[person(100 + 30 * (i % 2), 100, 50, 100)] for i in range(20)] + [[]]
    frames += [[person(100, 100, 50, 100)]]
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert [c.id for c in outputs[19]] == ['1'] and outputs[20] == []
    assert [c.id for c in outputs[21]] == ['1']


def test_different_classes_never_associate():
    tracker = DetectionTracker(release_frames=3)
    box = (10.0, 10.0, 50.0, 90.0)
    for t in stamps(30, 15):
        tracker.update(t, [Detection('person', 0.9, box)])
    out = tracker.update(0.5, [Detection('chair', 0.9, box)])
    assert [(c.id, c.label, c.misses) for c in out] == [('1', 'person', 1)]
    assert [(t.id, t.label, t.confirmed) for t in tracker.tracks] == [
        ('1', 'person', True), ('2', 'chair', False)]


def test_box_smoothing():
    tracker = DetectionTracker(smoothing=0.5, default_fps=2)  # N = 1
    tracker.update(0.0, [person(0, 0, 10, 10)])
    out = tracker.update(0.5, [person(4, 0, 10, 10)])
    assert out[0].box == (2.0, 0.0, 12.0, 10.0)
    out = tracker.update(1.0, [person(8, 0, 10, 10)])
    assert out[0].box == (5.0, 0.0, 15.0, 10.0)


def test_tracker_timeout_and_counters():
    tracker = DetectionTracker(timeout_s=1.0)
    for t in stamps(30, 20):
        tracker.update(t, [person(0, 0, 10, 10)])
    tracker.update(19 / 30, [person(0, 0, 10, 10)])
    assert tracker.duplicates == 1 and tracker.n == 15 and tracker.m == 15
    assert not tracker.check_timeout(1.0)
    assert '1:person' in tracker.describe()
    assert tracker.check_timeout(2.0) and tracker.tracks == []
    tracker.update(2.1, [person(0, 0, 10, 10)])
    assert [t.id for t in tracker.tracks] == ['2']
    assert tracker.update(5.0, [person(0, 0, 10, 10)]) == [] and tracker.tracks[0].id == '3'


# --- properties ---------------------------------------------------------------------------

DTS = st.sampled_from([1 / 30, 1 / 30, 1 / 30, 0.1, 0.0, -0.02, 1.5, -10.0]) | \
    st.floats(0.001, 0.3)
BOXES = st.builds(lambda x, y, w, h: (float(x), float(y), float(x + w), float(y + h)),
                  st.integers(0, 40), st.integers(0, 40), st.integers(1, 30), st.integers(1, 30))
DETS = st.lists(st.builds(Detection, st.sampled_from(['a', 'b']), st.floats(0, 1), BOXES),
                max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(DTS, DETS, st.integers(1, 20)), max_size=30),
       st.sampled_from([None, 1, 3]), st.sampled_from([0.0, 0.6]))
def test_tracker_random_sequences(runs, release_frames, smoothing):
    tracker = DetectionTracker(release_frames=release_frames, smoothing=smoothing)
    stamp, classes, confirmed_before, gone = 100.0, {}, set(), set()
    alive: set[str] = set()
    frames = [(dt, dets) for dt, dets, repeat in runs for _ in range(repeat)]
    for dt, dets in frames:
        stamp += dt
        out = tracker.update(stamp, dets)
        tracks = tracker.tracks
        ids = [t.id for t in tracks]
        assert len(ids) == len(set(ids))
        assert out == [t for t in tracks if t.confirmed]
        assert not gone & set(ids)  # ids are never reused
        for t in tracks:
            assert classes.setdefault(t.id, t.label) == t.label
        for t in out:
            if t.id not in confirmed_before:
                assert t.hits >= tracker.n >= 1
        confirmed_before |= {t.id for t in out}
        gone |= alive - set(ids)
        alive = set(ids)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(DTS, st.sampled_from(['a', 'b', None]), st.floats(0, 1),
                          st.integers(1, 20)), max_size=30),
       st.sampled_from([None, 1, 4]))
def test_voter_random_sequences(runs, release_frames):
    voter = LabelVoter(min_score=0.3, release_frames=release_frames)
    stamp, votes = 0.0, []
    previous = None
    frames = [(dt, label, score) for dt, label, score, repeat in runs for _ in range(repeat)]
    for dt, label, score in frames:
        counters = (voter.duplicates, voter.backwards, voter.resets)
        last = voter.estimator.last_stamp
        stamp += dt
        state = voter.update(stamp, label, score)
        ignored = (voter.duplicates, voter.backwards) != counters[:2] and \
            voter.resets == counters[2]
        if ignored:
            assert state.label == previous and not state.changed
            continue
        if voter.resets != counters[2] or (last is not None and stamp - last > 1.0):
            votes = []  # clock restart or timeout: everything released
        votes.append(label if label is not None and score >= 0.3 else None)
        assert state.changed == (state.label != previous)
        if state.changed and state.label is not None:
            assert len(votes) >= state.n and set(votes[-state.n:]) == {state.label}
        elif state.changed and votes[1:]:
            assert len(votes) >= state.m and previous not in votes[-state.m:]
        previous = state.label


# --- DetectionTracker on imperfect detections (issue 20) ----------------------------------

def test_person_missed_in_single_frames_stays_confirmed_at_predicted_position():
    tracker = DetectionTracker()  # 30 fps: N = 15, slack = 4, coast G = 3
    outputs = []
    for i, t in enumerate(stamps(30, 90)):
        dets = [] if i % 4 == 3 else [person(100 + 3 * i, 100, 50, 100)]  # missed 1 in 4
        outputs.append(tracker.update(t, dets))
    first = next(i for i, out in enumerate(outputs) if out)
    assert first == 18  # the 15th hit, on frame 19 = N + slack
    assert all([c.id for c in out] == ['1'] for out in outputs[first:])
    for i, out in enumerate(outputs[first:], first):
        assert out[0].predicted == (i % 4 == 3)
        assert abs(out[0].box[0] - (100 + 3 * i)) < 1.5  # the prediction follows the walk


@pytest.mark.parametrize('period', [2, 3])
def test_flickering_false_positive_is_never_confirmed(period):
    tracker = DetectionTracker()  # seen in every 2nd or 3rd frame: never N of N + slack
    for i, t in enumerate(stamps(30, 120)):
        dets = [person(100, 100, 50, 100)] + ([person(400, 100, 50, 100, 0.99)]
                                               if i % period == 0 else [])
        assert [c.id for c in tracker.update(t, dets)] in ([], ['1'])


def test_first_frame_never_confirms_a_track_even_when_n_is_1():
    tracker = DetectionTracker(default_fps=2)  # N = 1
    assert tracker.update(0.0, [person(0, 0, 10, 10)]) == []
    assert [c.id for c in tracker.update(0.5, [person(0, 0, 10, 10)])] == ['1']


def test_stale_box_is_not_published_after_the_coast_gap():
    tracker = DetectionTracker()  # 30 fps: G = max(1, N // 4) = 3, M = 15
    frames = [[person(100, 100, 50, 100)] for _ in range(20)] + [[]] * 90
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert [len(out) for out in outputs[20:]] == [1] * 3 + [0] * 87
    assert all(out[0].box == (100, 100, 150, 200) for out in outputs[20:23])  # no motion
    assert tracker.tracks == []  # released after M = 15 misses, forgotten after 6 M


def test_person_walking_out_of_the_picture_is_not_coasted():
    tracker = DetectionTracker()
    frames = [[person(500, 100, 50, 100), person(590 + 2 * i, 100, min(50, 48 - 2 * i), 100)]
              for i in range(20)]
    frames = [[Detection(d.label, d.score, (d.box[0], d.box[1], min(d.box[2], 640.0),
                                            d.box[3])) for d in f] for f in frames]
    frames += [[person(500, 100, 50, 100)]] * 5  # the second person has left
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    assert [c.id for c in outputs[19]] == ['1', '2']
    assert all([c.id for c in out] == ['1'] for out in outputs[20:])


def test_person_hidden_behind_another_is_not_published_and_keeps_its_id():
    tracker = DetectionTracker()
    frames = [[person(100, 100, 50, 100), person(120, 100, 50, 100)] for _ in range(20)]
    frames += [[person(100, 100, 50, 100)]] * 5  # 2 stands behind 1, which covers 60 % of it
    frames += [[person(100, 100, 50, 100), person(120, 100, 50, 100)]] * 2
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    ids = [[c.id for c in out] for out in outputs]
    assert ids[19] == ['1', '2']
    assert all(out == ['1'] for out in ids[20:25])
    assert ids[25:] == [['1', '2']] * 2


@pytest.mark.parametrize('amplitude', [10, 20])
def test_association_survives_camera_shake(amplitude):
    rng = random.Random(amplitude)
    tracker = DetectionTracker()
    iou_only = DetectionTracker(max_distance=0, motion_compensation=False)
    shaken, iou_ids = [], set()
    for i, t in enumerate(stamps(15, 60)):  # people 40 px wide, camera jumps up to 20 px
        dx, dy = rng.uniform(-amplitude, amplitude), rng.uniform(-amplitude, amplitude) * 0.6
        dets = [person(100 + dx, 100 + dy, 40, 100), person(300 + dx, 110 + dy, 40, 100)]
        shaken.append(tracker.update(t, dets))
        iou_ids |= {c.id for c in iou_only.update(t, dets)}
    n = tracker.n
    assert all([c.id for c in out] == ['1', '2'] for out in shaken[n - 1:])
    assert all(not c.predicted for out in shaken for c in out)
    if amplitude == 20:
        assert iou_ids != {'1', '2'}  # IoU alone, uncompensated, loses them and starts over


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_ids_hold_in_a_row_of_people_when_the_camera_jumps_a_box_width(seed):
    # Four people 40 px wide, 70 px apart: a jump of up to 40 px a frame puts each one's box
    # nearer its neighbour's last box than its own. The whole picture moves alike, so the
    # shift that lines up all four (camera_shift) is the camera's, and no id changes hands.
    rng = random.Random(seed)
    tracker = DetectionTracker()
    outputs = []
    for t in stamps(15, 60):
        dx, dy = rng.uniform(-40, 40), rng.uniform(-15, 15)
        outputs.append(tracker.update(t, [person(100 + 70 * k + dx, 100 + dy, 40, 100)
                                          for k in range(4)]))
    n = tracker.n
    for out in outputs[n - 1:]:
        assert [c.id for c in sorted(out, key=lambda c: c.box[0])] == ['1', '2', '3', '4']


def test_camera_shift_is_the_translation_that_lines_up_most_tracks():
    tracks = [(100, 100, 140, 200), (170, 100, 210, 200), (240, 100, 280, 200)]
    moved = [(x1 + 38, y1 - 6, x2 + 38, y2 - 6) for x1, y1, x2, y2 in tracks]
    labels = ['person'] * 3
    assert camera_shift(tracks, labels, moved, labels) == pytest.approx((38, -6))
    # One person missing from an evenly spaced row: a shift by the spacing (-70) lines up as
    # many as the true one (0); the smaller wins.
    assert camera_shift(tracks, labels, tracks[:2], labels[:2]) == pytest.approx((0, 0))
    assert camera_shift(tracks, labels, [], []) == pytest.approx((0, 0))
    # Other classes never line up with a person's track.
    assert camera_shift(tracks, labels, moved, ['car'] * 3) == pytest.approx((0, 0))


def test_person_stepping_out_from_behind_a_crossing_one_keeps_its_id():
    # TUD-Stadtmitte, frames 54-64: a narrow box (B, standing) is hidden while a wider one (A,
    # walking right) passes in front, the detector giving one box for both, which A's track
    # follows. B steps out at A's left, far from B's prediction: A's track must keep the close
    # box and B's take B, not both trade for two looser pairs with more total similarity.
    def walker(i):
        return Detection('person', 0.9, (100 + 3 * i, 90, 160 + 3 * i, 290))

    frames = [[walker(i), Detection('person', 0.9, (200, 98, 240, 272))] for i in range(15)]
    frames += [[Detection('person', 0.9, (100 + 3 * i, 95, 172 + 3 * i, 288))]
               for i in range(15, 23)]  # one box for both
    frames += [[walker(i), Detection('person', 0.9, (150 - 3 * (i - 23), 98,
                                                     195 - 3 * (i - 23), 272))]
               for i in range(23, 33)]
    tracker = DetectionTracker()
    outputs = [tracker.update(t, f) for t, f in zip(stamps(25, len(frames)), frames)]
    assert {c.id for c in outputs[14]} == {'1', '2'}
    for out in outputs[23:]:
        boxes = {c.id: c.box for c in out}
        assert boxes['1'][2] - boxes['1'][0] == 60 and boxes['2'][2] - boxes['2'][0] == 45


def test_coasted_box_moves_with_the_camera():
    """A camera jolt moves every person in the picture: a missed person's predicted box moves
    with the ones still seen (the median shift of their matches), not left where it was."""
    tracker = DetectionTracker()  # 30 fps: G = 3
    frames = [[person(100, 100, 50, 100), person(300, 100, 50, 100), person(500, 100, 50, 100)]
              for _ in range(20)]
    # A jolt of (20, 4) px; the second person missed.
    frames += [[person(120, 104, 50, 100), person(520, 104, 50, 100)]]
    outputs = [tracker.update(t, f) for t, f in zip(stamps(30, len(frames)), frames)]
    coasted = {c.id: c for c in outputs[-1]}['2']
    assert coasted.predicted
    assert coasted.box == pytest.approx((320, 104, 370, 204), abs=0.5)
