"""Extract (or load from the cache) every item of every source of the recipe."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mmcl.recipes.config import RecipeConfig
from mmcl.recipes.items import Item, ItemCache, Progress
from mmcl.recipes.sources_eval import crema_items, moud_items
from mmcl.recipes.sources_face import face_items
from mmcl.recipes.sources_text import clean_text_items, text_items
from mmcl.recipes.sources_voice import pyaa_items, voice_items
from model.errors import DataFormatError
from realtime.features.config import FeatureConfig
from realtime.features.extract import OfflineExtractor

log = logging.getLogger(__name__)


@dataclass
class BuiltItems:
    items: dict[str, list[Item]]  # source → items
    seconds: dict[str, float] = field(default_factory=dict)  # source → build time (cache hits are fast)
    cache_hits: int = 0
    cache_misses: int = 0

    def of(self, source: str, split: str | None = None) -> list[Item]:
        """The items of ``source`` (only those of ``split`` — "dev", "test", "eval" — when given)."""
        return [it for it in self.items.get(source, []) if split is None or it.split == split]

    def sizes(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for source, items in self.items.items():
            for it in items:
                out.setdefault(source, {}).setdefault(it.split, 0)
                out[source][it.split] += 1
        return out


def recipe_feature_config(cfg: RecipeConfig) -> FeatureConfig:
    """The live extractors' settings for the recipe (the live feature set, the live window, greedy ASR as live)."""
    return FeatureConfig(window_s=cfg.compose.window_s, whisper_beam_size=cfg.text.asr_beam_size)


def source_steps(
    cfg: RecipeConfig, cache: ItemCache, ex: OfflineExtractor, progress: Progress | None,
    only: list[str] | None = None,
) -> list[tuple[str, Callable[[], list[Item]]]]:  # fmt: skip
    """(source name, builder) of every training source (``only`` some of them when given)."""
    root, seed, limit = cfg.data_path, cfg.seed, cfg.limit
    horizon = cfg.compose.window_s + cfg.compose.max_tail_s
    steps: list[tuple[str, Callable[[], list[Item]]]] = [
        ("face", lambda: face_items(root, cfg.face, cfg.compose.window_s, seed, cache, ex, limit, progress)),
        ("voice", lambda: voice_items(root, cfg.voice, cache, ex, limit, progress)),
        ("pyaa", lambda: pyaa_items(root, cfg.voice, seed, cache, ex, limit, progress)),
        ("text", lambda: text_items(root, cfg.text, seed, cache, ex, limit, progress)),
        ("clean_text", lambda: clean_text_items(root, cfg.text, seed, horizon, cache, ex, limit, progress)),
    ]
    return [(n, f) for n, f in steps if only is None or n in only]


def build_items(
    cfg: RecipeConfig, progress: Progress | None = None, with_eval: bool = True, only: list[str] | None = None
) -> BuiltItems:
    root = cfg.data_path
    if not root.is_dir():
        raise DataFormatError(
            f"data root {root} does not exist; pass --data-root pointing at the shared data folder "
            "(the recipe trains only on that real data)"
        )
    cache = ItemCache(cfg.cache_path)
    # The recipe reads the raw voice steps (FileFeatures.audio_raw) and applies the speaker normaliser itself
    # (compose.py), so the cache never depends on the normaliser's prior.
    fcfg = recipe_feature_config(cfg)
    ex = OfflineExtractor(fcfg, voice_prior=np.zeros(len(fcfg.live_set.audio)))
    out = BuiltItems(items={})
    steps = source_steps(cfg, cache, ex, progress, only=only)
    if with_eval and only is None:
        steps += [
            ("crema_d", lambda: crema_items(root, cfg.voice.valence, cache, ex, progress)),
            ("moud", lambda: moud_items(root, cache, ex, progress)),
        ]
    try:
        for name, make in steps:
            t0 = time.perf_counter()
            out.items[name] = make()
            out.seconds[name] = time.perf_counter() - t0
            log.info("%s: %d items in %.1f s", name, len(out.items[name]), out.seconds[name])
    finally:
        ex.close()
    out.cache_hits, out.cache_misses = cache.hits, cache.misses
    return out
