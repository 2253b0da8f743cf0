"""Person groups of the recipe: which are held out for the final test, and which fold each of the rest is in.

The unit of every split is a **person group** — a RAVDESS actor, a London subject, a document of rated
sentences (a review, an editorial; a tweet or movie snippet is its own document), a pyAudioAnalysis clip —
so that no person (or document) is ever on both sides of a split:

* ``held_out``: a seeded share of the groups of a source becomes the **final test**, scored once after
  every choice is made; the rest is the **development** set.
* ``assign_folds``: the development groups are dealt into ``k`` folds (seeded shuffle, round robin, so the
  folds differ in size by at most one group; with ``strata`` given — e.g. actor sex — each stratum is dealt
  separately). Fold ``f`` of every source is validated together while the model trains on the other folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from zlib import crc32

import numpy as np


def _rng(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng([seed, crc32(salt.encode())])


def held_out(groups: Sequence[str], test_frac: float, seed: int) -> dict[str, str]:
    """group → "test" for ``round(test_frac · n)`` groups (at least one when n ≥ 2), "dev" for the rest.

    The draw is a seeded permutation of the sorted groups (``np.random.default_rng(seed)``), so the same
    data and seed always hold out the same groups."""
    keys = sorted(set(groups))
    n = len(keys)
    n_test = min(max(round(test_frac * n), 1 if n >= 2 else 0), max(n - 1, 0))
    order = [keys[i] for i in np.random.default_rng(seed).permutation(n)]
    test = set(order[:n_test])
    return {g: ("test" if g in test else "dev") for g in keys}


def assign_folds(
    groups: Sequence[str], k: int, seed: int, salt: str, strata: Callable[[str], str] | None = None
) -> dict[str, int]:
    """group → fold in 0..k−1, balanced (sizes differ by at most one per stratum), seeded."""
    keys = sorted(set(groups))
    by_stratum: dict[str, list[str]] = {}
    for g in keys:
        by_stratum.setdefault(strata(g) if strata else "", []).append(g)
    out: dict[str, int] = {}
    offset = 0
    for name in sorted(by_stratum):
        members = by_stratum[name]
        order = _rng(seed, f"{salt}/{name}").permutation(len(members))
        for pos, i in enumerate(order):
            out[members[i]] = (offset + pos) % k
        offset += len(members)  # continue the deal where the last stratum stopped
    return out
