"""The linear-probe and late-fusion baselines of ``mmcl ablate`` (model/baselines.py) on hand-made data whose
answer is known: a label carried by one modality's mean, missing modalities, several label groups."""

import numpy as np
import pytest

from model.baselines import baseline_metrics, late_fusion, linear_probe, pool_steps
from model.data.types import MultimodalData, Split
from model.evaluate import TaskInfo, compute_metrics

DIMS = {"vision": 4, "audio": 3, "text": 5}
L = 10


def _split(n: int, rng: np.random.Generator, classify: bool = False, audio_missing: float = 0.0) -> Split:
    x = {m: rng.normal(size=(n, L, d)).astype(np.float32) for m, d in DIMS.items()}
    masks = {m: np.ones((n, L), bool) for m in DIMS}
    masks["vision"][:, : L // 2] = False  # the face is seen on the second half only
    signal = x["audio"][:, :, 0].mean(axis=1) * np.sqrt(L)  # unit variance, carried by the voice
    gone = rng.random(n) < audio_missing
    masks["audio"][gone] = False
    if classify:  # two label groups: the voice's sign, and the words' sign
        words = x["text"][:, :, 1].mean(axis=1)
        labels = np.stack([signal > 0, words > 0], axis=1).astype(np.int64)
    else:
        labels = (2.0 * signal + 0.1 * rng.normal(size=n)).astype(np.float32)
    return Split(vision=x["vision"], audio=x["audio"], text=x["text"], vision_mask=masks["vision"],
                 audio_mask=masks["audio"], text_mask=masks["text"], labels=labels,
                 ids=[str(i) for i in range(n)])  # fmt: skip


def _data(classify: bool = False, audio_missing: float = 0.0, seed: int = 0) -> MultimodalData:
    rng = np.random.default_rng(seed)
    splits = {s: _split(n, rng, classify, audio_missing) for s, n in (("train", 400), ("valid", 100), ("test", 200))}
    if classify:
        return MultimodalData(name="t", format="mult", splits=splits, task="classification", label_kind="mer",
                              num_labels=2, num_classes=2, label_names=["Voice", "Words"])  # fmt: skip
    return MultimodalData(name="t", format="mmsa", splits=splits, task="regression", label_kind="msa")


def test_pool_steps_mean_last_presence():
    x = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[True, True, False], [False, False, False]])
    out = pool_steps(x, mask)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out[0], [1.0, 2.0, 2.0, 3.0, 1.0])  # mean of steps 0-1, step 1, present
    np.testing.assert_allclose(out[1], [0.0, 0.0, 0.0, 0.0, 0.0])  # nothing observed: zeros, absent


def test_probe_finds_the_signal_and_late_fusion_is_diluted_by_uninformative_modalities():
    data = _data()
    probe = baseline_metrics(data)["linear_probe"]
    late = baseline_metrics(data)["late_fusion"]
    assert probe["acc2_non0"] > 0.95 and probe["corr"] > 0.95
    # late fusion averages the voice's (good) prediction with two near-zero ones: the sign survives, the scale
    # does not, so its accuracy stays high while its MAE is clearly worse than the probe's
    assert late["acc2_non0"] > 0.9
    assert late["mae"] > 1.5 * probe["mae"]


def test_late_fusion_averages_only_present_modalities():
    data = _data(audio_missing=0.5)
    raw = late_fusion(data)["test"]
    test = data.splits["test"]
    assert raw.shape == (len(test), 1) and np.isfinite(raw).all()
    voiced = test.audio_mask.any(axis=1)
    y = test.labels
    err_voiced = np.abs(raw[voiced, 0] - y[voiced]).mean()
    err_silent = np.abs(raw[~voiced, 0] - y[~voiced]).mean()
    assert err_voiced < 0.8 * err_silent  # the voice's ridge is used only where the voice is present


def test_classification_baselines_give_log_probabilities_per_label_group():
    data = _data(classify=True)
    info = TaskInfo.from_data(data)
    raw = linear_probe(data)["test"]
    assert raw.shape == (len(data.splits["test"]), 4)
    probs = np.exp(raw.reshape(-1, 2, 2)).sum(axis=2)
    np.testing.assert_allclose(probs, 1.0, atol=1e-6)
    metrics = compute_metrics(raw, data.splits["test"], info)
    assert metrics["voice_acc"] > 0.9 and metrics["words_acc"] > 0.9


@pytest.mark.parametrize("name", ["linear_probe", "late_fusion"])
def test_baselines_are_deterministic(name):
    a = baseline_metrics(_data(), [name])[name]
    b = baseline_metrics(_data(), [name])[name]
    assert a == b
