"""The one resampler onto the common grid (``realtime.features.grid.to_grid``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.features.grid import SampleBuffer, grid_times, to_grid


def test_point_samples_are_averaged_per_step() -> None:
    # 30 fps frames over 0.3 s: three frames per 0.1 s step; value = frame index.
    t = np.arange(9) / 30.0
    x = np.arange(9, dtype=np.float64)[:, None]
    grid, mask = to_grid(t, x, np.ones(9, bool), t_start=0.0, n_steps=3, hz=10.0)
    assert grid.dtype == np.float32 and grid.shape == (3, 1)
    assert mask.tolist() == [True, True, True]
    np.testing.assert_allclose(grid[:, 0], [1.0, 4.0, 7.0])  # frame 3 at exactly 0.1 s is in step 1


def test_invalid_and_non_finite_samples_are_ignored_and_masked() -> None:
    t = np.array([0.01, 0.02, 0.15, 0.25])
    x = np.array([[1.0], [3.0], [np.nan], [5.0]])
    valid = np.array([True, False, True, False])
    grid, mask = to_grid(t, x, valid, 0.0, 3, 10.0)
    assert mask.tolist() == [True, False, False]
    assert grid[0, 0] == 1.0 and grid[1, 0] == 0.0 and grid[2, 0] == 0.0


def test_samples_outside_the_window_are_ignored() -> None:
    grid, mask = to_grid(np.array([-0.05, 0.5]), np.ones((2, 2)), np.ones(2, bool), 0.0, 5, 10.0)
    assert not mask.any() and not grid.any()


def test_interval_samples_cover_the_steps_they_overlap_weighted_by_overlap() -> None:
    # word A (value 1) spoken 0.05–0.25 s, word B (value 3) 0.20–0.30 s.
    starts, ends = np.array([0.05, 0.20]), np.array([0.25, 0.30])
    x = np.array([[1.0], [3.0]])
    grid, mask = to_grid(starts, x, np.ones(2, bool), 0.0, 4, 10.0, ends=ends)
    assert mask.tolist() == [True, True, True, False]
    np.testing.assert_allclose(grid[:2, 0], [1.0, 1.0])
    # step 2 (0.2–0.3): A overlaps 0.05 s, B overlaps 0.1 s → (0.05·1 + 0.1·3) / 0.15
    np.testing.assert_allclose(grid[2, 0], (0.05 * 1 + 0.1 * 3) / 0.15, rtol=1e-6)


def test_zero_length_interval_is_a_point() -> None:
    grid, mask = to_grid(
        np.array([0.12]), np.array([[2.0]]), np.ones(1, bool), 0.0, 3, 10.0, ends=np.array([0.12])
    )
    assert mask.tolist() == [False, True, False] and grid[1, 0] == 2.0


def test_max_gap_fills_empty_steps_from_nearby_samples_only() -> None:
    # a 4 fps camera: samples at 0.0 and 0.25 s; 0.1–0.2 is 0.05 s from both
    t = np.array([0.0, 0.25])
    x = np.array([[1.0], [2.0]])
    grid, mask = to_grid(t, x, np.ones(2, bool), 0.0, 6, 10.0, max_gap=0.06)
    assert mask.tolist() == [True, True, True, True, False, False]
    assert grid[1, 0] in (1.0, 2.0)
    assert grid[3, 0] == 2.0  # 0.3–0.4 is 0.05 s after the 0.25 s sample
    _, mask0 = to_grid(t, x, np.ones(2, bool), 0.0, 6, 10.0)
    assert mask0.tolist() == [True, False, True, False, False, False]


@settings(max_examples=60, deadline=None)
@given(offset=st.floats(min_value=-10.0, max_value=10.0), stream_t0=st.floats(min_value=0.0, max_value=5.0))
def test_audio_step_centres_fill_each_grid_step_exactly_once(offset: float, stream_t0: float) -> None:
    # Audio steps are stamped at their centres; any grid offset then holds exactly one step per grid step.
    centres = stream_t0 + (np.arange(200) + 0.5) / 10.0
    x = np.arange(200, dtype=np.float64)[:, None]
    t_start = stream_t0 + 5.0 + (offset % 0.1)
    grid, mask = to_grid(centres, x, np.ones(200, bool), t_start, 50, 10.0)
    assert mask.all()
    steps = grid[:, 0]
    assert np.all(np.diff(steps) == 1.0)  # one distinct audio step per grid step, none averaged


def test_grid_times_and_argument_checks() -> None:
    np.testing.assert_allclose(grid_times(1.0, 3, 10.0), [1.0, 1.1, 1.2])
    with pytest.raises(ValueError):
        to_grid(np.zeros(3), np.zeros((2, 1)), np.ones(3, bool), 0.0, 5, 10.0)
    with pytest.raises(ValueError):
        to_grid(np.zeros(2), np.zeros((2, 1)), np.ones(2, bool), 0.0, 5, 0.0)
    empty, mask = to_grid(np.zeros(0), np.zeros((0, 7)), np.zeros(0, bool), 0.0, 4, 10.0)
    assert empty.shape == (4, 7) and not mask.any()


def test_sample_buffer_matches_to_grid_and_prunes_old_samples() -> None:
    rng = np.random.default_rng(0)
    buf = SampleBuffer(3)
    t = np.sort(rng.uniform(0, 10, 200))
    x = rng.standard_normal((200, 3))
    ok = rng.random(200) > 0.2
    for i in rng.permutation(200):  # workers may finish out of order
        buf.add(t[i], x[i], ok[i])
    g1, m1 = buf.window(5.0, 50, 10.0)
    g2, m2 = to_grid(t, x, ok, 5.0, 50, 10.0)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(m1, m2)
    buf.prune(before=5.0)
    assert len(buf) == int((t >= 5.0).sum())
    np.testing.assert_array_equal(buf.window(5.0, 50, 10.0)[0], g2)
    words = SampleBuffer(1)
    words.add(0.05, np.array([1.0]), end=0.25)
    words.prune(before=0.2)  # still being spoken at 0.2 s
    assert len(words) == 1 and words.window(0.0, 3, 10.0)[1].tolist() == [True, True, True]
    with pytest.raises(ValueError):
        words.add(0.0, np.zeros(2))
