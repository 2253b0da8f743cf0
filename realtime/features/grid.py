"""The one resampler that puts timestamped samples of any modality on the common time grid.

Both paths use it: ``mmcl extract`` (whole files) and the live window assembler (every hop). A grid is
``n_steps`` steps of ``1/hz`` seconds starting at ``t_start``; step ``k`` covers the half-open interval
``[t_start + k/hz, t_start + (k+1)/hz)``.

* **Point samples** (video frames at their capture time, audio steps at their centre): a sample belongs to
  the step whose interval holds its time; a step's value is the mean of its valid samples.
* **Interval samples** (``ends`` given; words spoken from ``start`` to ``end``): a sample covers every step
  its interval overlaps; a step's value is the mean of the samples covering it, weighted by overlap time.
  A sample with ``end <= start`` is treated as a point.
* A step with no valid sample is masked (``mask`` False) and its values are 0. With ``max_gap > 0`` such a
  step instead takes the nearest valid sample no further than ``max_gap`` seconds from the step's interval
  (useful live when the face worker runs below the grid rate); it is then unmasked.
* Invalid samples (``valid`` False, or any non-finite value) never contribute.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-6  # seconds; keeps samples that sit on a step boundary (e.g. frame 3 at 0.1 s) in the later step


def grid_times(t_start: float, n_steps: int, hz: float) -> np.ndarray:
    """Start time of every step, shape (n_steps,)."""
    return t_start + np.arange(n_steps, dtype=np.float64) / hz


def to_grid(
    times: np.ndarray,
    values: np.ndarray,
    valid: np.ndarray,
    t_start: float,
    n_steps: int,
    hz: float,
    *,
    ends: np.ndarray | None = None,
    max_gap: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample samples onto the grid.

    Args:
        times: (N,) sample times in seconds (interval starts when ``ends`` is given).
        values: (N, D) sample values.
        valid: (N,) bool, False for samples that must not be used (no face, silence, ...).
        t_start: time of the first step's start.
        n_steps: L, number of steps.
        hz: steps per second.
        ends: optional (N,) interval ends (see module docstring).
        max_gap: seconds; fill empty steps from the nearest valid sample within this distance.

    Returns:
        (grid (L, D) float32, mask (L,) bool).
    """
    if n_steps < 0 or hz <= 0:
        raise ValueError(f"n_steps must be >= 0 and hz > 0 (got {n_steps}, {hz})")
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if values.ndim != 2 or values.shape[0] != times.shape[0]:
        raise ValueError(f"values must be (N, D) with N = len(times) = {times.shape[0]}, got {values.shape}")
    dim = values.shape[1]
    usable = np.asarray(valid, dtype=bool).reshape(-1) & np.isfinite(values).all(axis=1) & np.isfinite(times)
    sums = np.zeros((n_steps, dim), dtype=np.float64)
    weights = np.zeros(n_steps, dtype=np.float64)
    if ends is None:
        point = np.ones_like(times, dtype=bool)
        ends_arr = times
    else:
        ends_arr = np.asarray(ends, dtype=np.float64).reshape(-1)
        if ends_arr.shape != times.shape:
            raise ValueError("ends must have the same length as times")
        point = ends_arr <= times
    rel = (times - t_start) * hz  # position in steps

    # Point samples: one step each, equal weight.
    sel = usable & point
    if sel.any():
        k = np.floor(rel[sel] + _EPS * hz).astype(np.int64)
        inside = (k >= 0) & (k < n_steps)
        np.add.at(sums, k[inside], values[sel][inside])
        np.add.at(weights, k[inside], 1.0)

    # Interval samples: every overlapped step, weighted by the overlap in steps.
    rel_end = (ends_arr - t_start) * hz
    for i in np.flatnonzero(usable & ~point):
        a, b = rel[i], rel_end[i]
        k0, k1 = max(int(np.floor(a)), 0), min(int(np.ceil(b)), n_steps)
        if k1 <= k0:
            continue
        ks = np.arange(k0, k1)
        overlap = np.minimum(b, ks + 1.0) - np.maximum(a, ks.astype(np.float64))
        keep = overlap > 1e-9
        sums[ks[keep]] += overlap[keep, None] * values[i]
        weights[ks[keep]] += overlap[keep]

    mask = weights > 0
    grid = np.zeros((n_steps, dim), dtype=np.float64)
    grid[mask] = sums[mask] / weights[mask, None]

    if max_gap > 0 and (~mask).any() and usable.any():
        idx = np.flatnonzero(usable)
        s_start, s_end = times[idx], np.where(point[idx], times[idx], ends_arr[idx])
        starts = grid_times(t_start, n_steps, hz)
        for k in np.flatnonzero(~mask):
            a, b = starts[k], starts[k] + 1.0 / hz
            dist = np.maximum(np.maximum(a - s_end, s_start - b), 0.0)
            j = int(np.argmin(dist))
            if dist[j] <= max_gap:
                grid[k] = values[idx[j]]
                mask[k] = True
    return grid.astype(np.float32), mask


class SampleBuffer:
    """The recent samples of one modality, for the live window assembler (one owner thread).

    ``add`` samples as workers finish them (any order); ``window`` resamples those in
    ``[t_start, t_start + n_steps/hz)`` with ``to_grid``; ``prune`` forgets samples that ended before a time.
    Interval samples (words) pass ``end``; point samples (frames, audio steps) do not.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._t: list[float] = []
        self._end: list[float] = []
        self._x: list[np.ndarray] = []
        self._ok: list[bool] = []

    def __len__(self) -> int:
        return len(self._t)

    def add(self, t: float, values: np.ndarray, valid: bool = True, end: float | None = None) -> None:
        if values.shape != (self.dim,):
            raise ValueError(f"expected a ({self.dim},) sample, got {values.shape}")
        self._t.append(float(t))
        self._end.append(float(t if end is None else end))
        self._x.append(values)
        self._ok.append(bool(valid))

    def prune(self, before: float) -> None:
        """Drop samples whose end (or time) is earlier than ``before``."""
        keep = [i for i, e in enumerate(self._end) if e >= before]
        if len(keep) != len(self._t):
            self._t = [self._t[i] for i in keep]
            self._end = [self._end[i] for i in keep]
            self._x = [self._x[i] for i in keep]
            self._ok = [self._ok[i] for i in keep]

    def window(
        self, t_start: float, n_steps: int, hz: float, max_gap: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``to_grid`` over the buffered samples: ((n_steps, dim) float32, (n_steps,) bool)."""
        if not self._t:
            return np.zeros((n_steps, self.dim), np.float32), np.zeros(n_steps, bool)
        times = np.asarray(self._t)
        ends = np.asarray(self._end)
        return to_grid(
            times, np.stack(self._x), np.asarray(self._ok), t_start, n_steps, hz,
            ends=ends if (ends > times).any() else None, max_gap=max_gap,
        )  # fmt: skip
