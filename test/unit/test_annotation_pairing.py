"""StampPairing: images, raw and confirmed results joined by header key, in any order."""

from __future__ import annotations

import pytest

from ros_onnx_vision.annotation.pairing import Key, Paired, StampPairing


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def key(seconds: float, frame: str = 'cam') -> Key:
    sec = int(seconds)
    return sec, round((seconds - sec) * 1e9), frame


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def pairing(clock: FakeClock, **kwargs) -> StampPairing[str, str]:
    return StampPairing(clock=clock, **kwargs)


def triples(pairs: list[Paired[str, str]]) -> list[tuple[str, str, str | None]]:
    return [(p.image, p.raw, p.confirmed) for p in pairs]


def test_in_order_image_raw_confirmed(clock):
    p = pairing(clock)
    assert p.add_image(key(10.0), 'img') == []
    assert p.add_raw(key(10.0), 'raw') == []  # waits for the confirmed result
    out = p.add_confirmed(key(10.0), 'conf')
    assert triples(out) == [('img', 'raw', 'conf')] and out[0].key == key(10.0)
    assert p.buffered == 0 and p.counts.paired == 1 and p.counts.unmatched == 0


@pytest.mark.parametrize('order', [('confirmed', 'raw', 'image'), ('raw', 'confirmed', 'image'),
                                   ('confirmed', 'image', 'raw'), ('raw', 'image', 'confirmed'),
                                   ('image', 'confirmed', 'raw')])
def test_any_arrival_order_pairs_once(clock, order):
    p = pairing(clock)
    values = {'image': 'img', 'raw': 'raw', 'confirmed': 'conf'}
    out = []
    for name in order:
        clock.now += 0.01
        out += getattr(p, f'add_{name}')(key(5.5), values[name])
    assert triples(out) == [('img', 'raw', 'conf')]
    clock.now += 10
    assert p.poll() == [] and p.counts.unmatched == 0 and p.counts.paired == 1


def test_out_of_order_frames_each_get_their_own_results(clock):
    p = pairing(clock)
    for t in (1.0, 1.1, 1.2):
        p.add_image(key(t), f'img{t}')
    out = p.add_raw(key(1.2), 'raw1.2') + p.add_raw(key(1.0), 'raw1.0')
    out += p.add_confirmed(key(1.0), 'conf1.0') + p.add_confirmed(key(1.2), 'conf1.2')
    assert triples(out) == [('img1.0', 'raw1.0', 'conf1.0'), ('img1.2', 'raw1.2', 'conf1.2')]
    assert p.buffered == 1  # 1.1: a skipped frame, no result yet


def test_missing_confirmed_is_yielded_after_wait_with_none(clock):
    p = pairing(clock, wait=0.3)
    p.add_image(key(2.0), 'img')
    p.add_raw(key(2.0), 'raw')
    clock.now = 0.29
    assert p.poll() == []
    clock.now = 0.31
    assert triples(p.poll()) == [('img', 'raw', None)]
    assert p.counts.without_confirmed == 1 and p.counts.unmatched == 0
    # A confirmed result that comes too late has nothing left to join: counted.
    p.add_confirmed(key(2.0), 'late')
    clock.now = 1.0
    assert p.poll() == [] and p.counts.unmatched_confirmed == 1


def test_without_confirmed_results_pairs_at_once(clock):
    p = pairing(clock, confirmed=False)
    p.add_image(key(3.0), 'img')
    assert triples(p.add_raw(key(3.0), 'raw')) == [('img', 'raw', None)]
    p.add_confirmed(key(3.0), 'ignored')
    clock.now = 5
    assert p.poll() == [] and p.counts.unmatched == 0


def test_raw_result_whose_image_is_gone_is_unmatched(clock):
    p = pairing(clock, max_frames=3, wait=0.3)
    for i in range(5):
        p.add_image(key(1 + i / 30), f'img{i}')
    assert p.counts.evicted == 2 and p.buffered == 3
    assert p.add_raw(key(1.0), 'raw0') == []  # its image was evicted
    clock.now = 0.5
    assert p.poll() == []
    assert p.counts.unmatched_raw == 1


def test_eviction_by_count_keeps_the_newest(clock):
    p = pairing(clock, max_frames=2, max_age=100.0, confirmed=False)
    for t in (1.0, 3.0, 2.0):  # out of order: 1.0 is the oldest and goes
        p.add_image(key(t), f'img{t}')
    assert p.counts.evicted == 1
    assert triples(p.add_raw(key(2.0), 'r2')) == [('img2.0', 'r2', None)]
    assert triples(p.add_raw(key(3.0), 'r3')) == [('img3.0', 'r3', None)]


def test_eviction_by_age_of_stamps(clock):
    p = pairing(clock, max_frames=100, max_age=1.0, confirmed=False)
    p.add_image(key(10.0), 'old')
    p.add_image(key(10.9), 'recent')
    assert p.counts.evicted == 0
    p.add_image(key(11.5), 'new')  # 10.0 is more than 1 s before it
    assert p.counts.evicted == 1 and p.buffered == 2
    assert triples(p.add_raw(key(10.9), 'r')) == [('recent', 'r', None)]


def test_evicted_image_waiting_for_confirmed_is_yielded_without_it(clock):
    p = pairing(clock, max_frames=1)
    p.add_image(key(1.0), 'img1')
    p.add_raw(key(1.0), 'raw1')
    out = p.add_image(key(1.1), 'img2')
    assert triples(out) == [('img1', 'raw1', None)]
    assert p.counts.evicted == 0 and p.counts.without_confirmed == 1


def test_duplicate_stamps_keep_the_newer_message_and_are_counted(clock):
    p = pairing(clock)
    p.add_image(key(4.0), 'first')
    p.add_image(key(4.0), 'second')
    p.add_raw(key(4.0), 'raw')
    out = p.add_confirmed(key(4.0), 'conf')
    assert triples(out) == [('second', 'raw', 'conf')]
    assert p.counts.duplicates == 1
    # A second raw result for a frame already drawn: its image is gone.
    p.add_raw(key(4.0), 'again')
    clock.now = 1.0
    assert p.poll() == [] and p.counts.unmatched_raw == 1


def test_frame_id_is_part_of_the_key(clock):
    p = pairing(clock, confirmed=False)
    p.add_image(key(1.0, 'left'), 'L')
    p.add_image(key(1.0, 'right'), 'R')
    assert triples(p.add_raw(key(1.0, 'right'), 'r')) == [('R', 'r', None)]
    assert p.buffered == 1


def test_results_older_than_the_first_image_are_not_unmatched(clock):
    p = pairing(clock)
    p.add_image(key(8.0), 'img')
    p.add_raw(key(7.9), 'raw before start')
    p.add_confirmed(key(7.9), 'conf before start')
    clock.now = 1.0
    p.poll()
    assert p.counts.before_start == 2 and p.counts.unmatched == 0


def test_waiting_results_are_bounded(clock):
    p = pairing(clock, max_frames=2)
    for i in range(4):
        p.add_raw(key(1 + i), f'r{i}')  # no image ever comes
    assert p.counts.unmatched_raw == 2
    clock.now = 1.0
    p.poll()
    assert p.counts.unmatched_raw == 4


def test_clear_forgets_without_counting(clock):
    p = pairing(clock)
    p.add_image(key(1.0), 'img')
    p.add_raw(key(1.0), 'raw')
    p.clear()
    clock.now = 1.0
    assert p.poll() == [] and p.buffered == 0 and p.counts.unmatched == 0


@pytest.mark.parametrize('kwargs', [{'max_frames': 0}, {'max_age': 0.0}, {'wait': -1.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        StampPairing(**kwargs)
