"""Recording live model-input windows for quantisation (``mmcl monitor --record-calib DIR``).

:class:`ShardRecorder` is the hook the inference engine calls with each window it scores (features and
masks exactly as the model receives them, after any per-user baseline). It runs on the monitor's window
loop, so it only copies the arrays: every ``record_stride``-th window is kept, full shards go through a
bounded queue (``writer_queue`` shards, **drop-newest** when the writer falls behind, counted) to a
daemon writer thread that compresses and writes them (``ShardWriter``). Recording stops by itself after
``record_max_windows`` windows. ``close()`` hands over the last partial shard, stops the thread (Event +
join with timeout) and returns what was written.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.config import CalibrationConfig
from calibration.shards import FEATURES, ShardWriter
from model.backends.base import ModelInputs
from model.featureset import FeatureSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordStats:
    directory: Path
    seen: int  # windows offered by the engine
    kept: int  # windows selected (stride) and handed to the writer
    written: int  # windows now on disk (this session)
    dropped: int  # windows lost because the writer was behind (drop-newest)
    shards: int  # shards written this session
    total: int  # windows in the folder, earlier sessions included


class ShardRecorder:
    """Callable window hook: ``recorder(features, masks)``; see the module docstring."""

    def __init__(
        self,
        directory: str | Path,
        feature_set: FeatureSet,
        cfg: CalibrationConfig | None = None,
        *,
        source: str = "monitor",
    ) -> None:
        self.cfg = cfg or CalibrationConfig()
        self.writer = ShardWriter(directory, feature_set, source=source, shard_windows=self.cfg.shard_windows)
        self.directory = self.writer.directory
        self._start_total = self.writer.windows
        self._queue: queue.Queue[ModelInputs] = queue.Queue(maxsize=self.cfg.writer_queue)
        self._pending: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()  # counters read by other threads
        self.seen = self.kept = self.dropped = self.written = self.shards = 0
        self._full_logged = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="calib-writer", daemon=True)
        self._thread.start()

    def __call__(self, features: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> None:
        self.seen += 1
        if (self.seen - 1) % self.cfg.record_stride or self._stop.is_set():
            return
        if self.kept >= self.cfg.record_max_windows:
            if not self._full_logged:
                log.info("calibration: %d windows recorded; recording stops here", self.kept)
                self._full_logged = True
            return
        self._pending.append(
            (
                {m: np.array(features[m], dtype=np.float32) for m in FEATURES},
                {m: np.array(masks[m], dtype=bool) for m in FEATURES},
            )
        )
        self.kept += 1
        if len(self._pending) >= self.cfg.shard_windows or self.kept >= self.cfg.record_max_windows:
            self._hand_over(block=False)

    def _hand_over(self, block: bool, timeout: float = 5.0) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        inputs = ModelInputs(
            **{m: np.stack([f[m] for f, _ in batch]) for m in FEATURES},
            **{f"{m}_mask": np.stack([k[m] for _, k in batch]) for m in FEATURES},
        )
        try:
            self._queue.put(inputs, block=block, timeout=timeout if block else None)
        except queue.Full:
            with self._lock:
                self.dropped += inputs.batch
            log.warning("calibration: shard writer behind; dropped %d windows (drop-newest)", inputs.batch)

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                inputs = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.writer.write_batch(inputs)
                with self._lock:
                    self.written += inputs.batch
                    self.shards += 1
            except Exception as exc:  # a full disk must not take the monitor down: log, count, go on
                with self._lock:
                    self.dropped += inputs.batch
                    self.error = f"{type(exc).__name__}: {exc}"
                log.error("calibration: could not write a shard to %s (%s)", self.directory, exc)

    def stats(self) -> RecordStats:
        with self._lock:
            return RecordStats(
                self.directory,
                self.seen,
                self.kept,
                self.written,
                self.dropped,
                self.shards,
                self._start_total + self.written,
            )

    def close(self, timeout: float = 30.0) -> RecordStats:
        """Write the last partial shard, stop the writer thread; idempotent."""
        if self._thread.is_alive():
            self._hand_over(block=True, timeout=timeout)
            self._stop.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("calibration: the shard writer did not finish within %.0f s", timeout)
        return self.stats()


def record_dataset_windows(
    data_path: str | Path,
    directory: str | Path,
    *,
    splits: tuple[str, ...] = ("train", "valid"),
    shard_windows: int = 64,
    source: str = "extract",
) -> int:
    """Write the windows of ``splits`` of a dataset (e.g. ``mmcl extract`` output) as calibration shards;
    the test split is left out so that it stays held out for the INT8 accuracy check. Returns the count."""
    from model.config import DataConfig
    from model.data.loading import load_dataset

    data = load_dataset(DataConfig(path=str(data_path)))
    assert data.feature_set is not None
    writer = ShardWriter(directory, data.feature_set, source=source, shard_windows=shard_windows)
    n = 0
    for name in splits:
        s = data.splits[name]
        if len(s):
            writer.add_inputs(ModelInputs(s.vision, s.audio, s.text, s.vision_mask, s.audio_mask, s.text_mask))
            n += len(s)
    writer.close()
    return n
