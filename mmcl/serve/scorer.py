"""One backend call for the windows of many clients, with their masked-modality variants (no Ray here).

``BatchScorer.score(requests)`` concatenates every request's rows and, for requests that ask for
``variants``, the three masked copies of each row (``masked_variants``: vision, audio, text masked out), runs
the backend once per window length, and hands each request back its own raw output rows — the same rows a
local ``InferenceEngine`` gets from its batch-1 and batch-3 calls, so the client decodes them with the same
code. ``check`` refuses a request computed on another feature set before anything is scored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.backends import create_backend
from model.backends.base import InferenceBackend, ModelInputs
from model.backends.cache import model_digest
from model.backends.inputs import live_like_inputs
from model.checkpoint import LoadedCheckpoint, load_checkpoint
from model.featureset import MODALITIES
from realtime.pipeline.inference import (
    checkpoint_interval,
    checkpoint_interval_by_presence,
    checkpoint_temperature,
    masked_variants,
)
from realtime.pipeline.wire import FeatureSetMismatch, WindowRequest

log = logging.getLogger(__name__)


def concat_inputs(parts: list[ModelInputs]) -> ModelInputs:
    """Rows of every part, in order (all parts share L and the feature dims)."""
    if len(parts) == 1:
        return parts[0]
    columns = zip(*(p.as_tuple() for p in parts), strict=True)
    return ModelInputs(*(np.concatenate(arrays, axis=0) for arrays in columns))


@dataclass(frozen=True)
class BatchStats:
    windows: int  # windows scored in this call (requests' rows, without variants)
    rows: int  # backend rows (windows + variants)
    model_s: float  # time in backend.run


class BatchScorer:
    """A loaded checkpoint and its backend, scoring batches of window requests."""

    def __init__(self, loaded: LoadedCheckpoint, backend: InferenceBackend) -> None:
        self.loaded = loaded
        self.backend = backend
        self.feature_set = loaded.feature_set
        self.digest = model_digest(loaded.model)

    @classmethod
    def load(cls, checkpoint: str | Path | None, backend: str, threads: int = 0) -> BatchScorer:
        """Load ``checkpoint`` (empty: the shipped default) onto ``backend`` with ``threads`` torch threads."""
        import torch

        from model.pretrained import default_checkpoint_path

        if threads > 0:
            torch.set_num_threads(threads)
        loaded = load_checkpoint(Path(checkpoint) if checkpoint else default_checkpoint_path())
        return cls(loaded, create_backend(backend, loaded))

    def info(self) -> dict[str, Any]:
        """What a client needs to decode outputs and to check it computes the right features."""
        interval = checkpoint_interval(self.loaded.extra)
        a_interval = checkpoint_interval(self.loaded.extra, "arousal_interval")
        return {
            "feature_set": self.feature_set.ident,
            "feature_dims": self.feature_set.dims,
            "task": self.loaded.task.to_dict(),
            "temperature": checkpoint_temperature(self.loaded.extra),
            "interval": list(interval) if interval is not None else None,
            "arousal_interval": list(a_interval) if a_interval is not None else None,
            "interval_by_presence": checkpoint_interval_by_presence(self.loaded.extra),
            "arousal_interval_by_presence": checkpoint_interval_by_presence(self.loaded.extra, "arousal_interval"),
            "max_steps": int(self.loaded.model_cfg.max_steps),
            "model_digest": self.digest,
            "model": self.loaded.path.name if self.loaded.path is not None else "",
            "backend": self.backend.describe(),
        }

    def check(self, req: WindowRequest) -> None:
        """Refuse a request whose feature set (name@version and column counts) is not the model's."""
        fs = self.feature_set
        if req.feature_set != fs.ident or req.dims != fs.dims:
            raise FeatureSetMismatch(
                f"this server's model was trained on feature set {fs.ident} {fs.dims}, but the client computed "
                f"{req.feature_set} {req.dims}. Run the monitor on {fs.ident} (`mmcl monitor --server` picks the "
                f"server's feature set at start; features.feature_set={fs.version}), or serve a checkpoint "
                f"trained on {req.feature_set}."
            )
        if req.inputs.steps > self.loaded.model_cfg.max_steps:
            raise FeatureSetMismatch(
                f"windows of {req.inputs.steps} steps exceed this model's {self.loaded.model_cfg.max_steps}; "
                "lower features.window_s on the client"
            )

    def score(self, requests: list[WindowRequest]) -> tuple[list[np.ndarray], BatchStats]:
        """Raw output rows per request (B, or 4·B with variants) and what the backend call(s) held."""
        out: list[np.ndarray | None] = [None] * len(requests)
        by_steps: dict[int, list[int]] = {}
        for k, r in enumerate(requests):
            by_steps.setdefault(r.inputs.steps, []).append(k)
        rows = 0
        model_s = 0.0
        for idx in by_steps.values():
            parts: list[ModelInputs] = []
            sizes: list[int] = []
            for k in idx:
                x = requests[k].inputs
                group = [x, masked_variants(x)] if requests[k].variants else [x]
                parts.extend(group)
                sizes.append(sum(g.batch for g in group))
            batch = concat_inputs(parts)
            t0 = time.perf_counter()
            raw = np.asarray(self.backend.run(batch), dtype=np.float32)
            model_s += time.perf_counter() - t0
            if raw.ndim != 2 or raw.shape[0] != batch.batch:
                raise RuntimeError(f"backend returned {raw.shape} for a batch of {batch.batch} rows")
            rows += batch.batch
            start = 0
            for k, n in zip(idx, sizes, strict=True):
                out[k] = raw[start : start + n]
                start += n
        windows = sum(r.inputs.batch for r in requests)
        return [o for o in out if o is not None], BatchStats(windows, rows, model_s)

    def warm_up(self, max_batch: int, steps: int = 50) -> None:
        """Run batch 1 and the largest batch once, so the first clients do not pay for lazy initialisation."""
        dims_ok = all(getattr(self.loaded.model_cfg, f"dim_{m}") == self.feature_set.dims[m] for m in MODALITIES)
        if not dims_ok:
            log.warning("checkpoint feature-set record and model dims disagree; skipping warm-up")
            return
        steps = min(steps, int(self.loaded.model_cfg.max_steps))
        for b in (1, max_batch):
            x = live_like_inputs(self.loaded.model, b, steps)
            self.score([WindowRequest(self.feature_set.ident, x, variants=True)])
