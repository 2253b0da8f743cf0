"""Config dataclasses of the model, its training and its data (composed into the app config by ``mmcl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from model.errors import ConfigError

Task = Literal["regression", "classification"]
Ablation = Literal["none", "no_csd", "no_self_attn", "no_cross_attn"]
CsdVariant = Literal["paper", "reference", "step"]
Pooling = Literal["mean", "mean_last", "attention"]
CsdAlone = Literal["specific", "identity"]
DataFormat = Literal["mmsa", "mult-iemocap", "cmdc", "auto"]

ABLATIONS: tuple[str, ...] = ("none", "no_csd", "no_self_attn", "no_cross_attn")


@dataclass
class ModelConfig:
    """The MMCL network. Input sizes are read from the data (0 = not known yet)."""

    dim_vision: int = 0
    dim_audio: int = 0
    dim_text: int = 0
    d_model: int = 256  # shared latent size d (paper: 256)
    n_heads: int = 4
    ff_mult: int = 2  # feed-forward hidden size = ff_mult * d_model
    enhance_layers: int = 1  # self-attention + FF blocks on the common part
    cross_layers: int = 1  # cross-attention blocks (query common, key/value specific)
    dropout: float = 0.1
    # 'paper' was picked as default by measurement on planted data (see README, "Design choices measured").
    csd: CsdVariant = "paper"
    ablation: Ablation = "none"
    # A window where a modality has no partner present (face only, voice only, words only): "specific" (the
    # paper as written: its steps all become one time-average) or "identity" (no decoupling for it there).
    csd_alone: CsdAlone = "specific"
    task: Task = "regression"
    num_labels: int = 1  # independent label groups (IEMOCAP: 4 emotions)
    num_classes: int = 1  # classes per group (regression: 1)
    head_hidden: int = 256
    # Optional sinusoidal time code after projection (same for all modalities). Off by default: on planted
    # data it lowered test Corr from 0.86 to 0.74 (see README, "Design choices measured").
    positional: bool = False
    max_steps: int = 512  # longest window the time encoding covers
    # Regression only: a second output, arousal, beside valence (output 0 stays the task's value).
    arousal_head: bool = False
    # How each modality's steps become one vector before the head: "mean" (masked mean, the original),
    # "mean_last" (the mean and the last real step side by side: the latest phrase / voice / face of a live
    # window), "attention" (a learned masked softmax over the steps).
    pool: Pooling = "mean"
    # The integration keeps the specific steps themselves beside the cross-attention over them
    # (Z~ = Z~c + CrossAttn(Z~c, Zs) + Zs). With ``csd: step`` a step's common and specific parts then sum
    # back to the step (g·Z + (1 − g)·Z), so a step CSD routes almost wholly to the specific part (partners
    # whose latent steps are near-orthogonal, as in the default model's spoken windows) keeps its features.
    specific_residual: bool = False

    def __post_init__(self) -> None:
        for name in ("dim_vision", "dim_audio", "dim_text"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0")
        if self.d_model <= 0 or self.n_heads <= 0 or self.d_model % self.n_heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be a positive multiple of model.n_heads ({self.n_heads})"
            )
        if self.enhance_layers < 1 or self.cross_layers < 1:
            raise ConfigError("model.enhance_layers and model.cross_layers must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.max_steps < 1:
            raise ConfigError("model.max_steps must be >= 1")
        if self.task == "regression" and (self.num_classes != 1 or self.num_labels != 1):
            raise ConfigError("regression models have model.num_classes = 1 and model.num_labels = 1")
        if self.task == "classification" and self.num_classes < 2:
            raise ConfigError("classification needs model.num_classes >= 2")
        if self.arousal_head and self.task != "regression":
            raise ConfigError("model.arousal_head is for regression models (valence + arousal)")
        if self.csd_alone not in ("specific", "identity"):
            raise ConfigError(f"model.csd_alone must be specific or identity, got {self.csd_alone!r}")
        if self.pool not in ("mean", "mean_last", "attention"):
            raise ConfigError(f"model.pool must be mean, mean_last or attention, got {self.pool!r}")

    @property
    def input_dims(self) -> dict[str, int]:
        return {"vision": self.dim_vision, "audio": self.dim_audio, "text": self.dim_text}

    @property
    def out_dim(self) -> int:
        return 2 if self.arousal_head else self.num_labels * self.num_classes


@dataclass
class TrainConfig:
    """Optimisation (paper: Adam, lr 3e-4, batch 64 for MSA / 128 for MER and MDA, 200 epochs)."""

    lr: float = 3e-4
    batch_size: int = 0  # 0 = the paper's: 64 for sentiment (MSA), 128 for emotion (MER) and depression (MDA)
    epochs: int = 200
    patience: int = 20  # early stopping: epochs without improvement on the validation split
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 disables clipping
    seed: int = 0
    contrastive_weight: float = 0.1  # λ in L = L_task + λ·L_CL
    temperature: float = 0.1  # InfoNCE temperature
    regression_loss: Literal["l1", "mse"] = "l1"
    arousal_weight: float = 1.0  # models with an arousal head: L_task += w · L1(arousal) over rated samples
    # auto: mae (regression) / f1 (classification); or any metric key; last: the final epoch, no selection
    select_metric: str = "auto"
    # checkpoint averaging: the final weights are the mean of the k best validation epochs' weights (with
    # select_metric=last: of the k last epochs); 0 or 1 = the single selected epoch
    average_best: int = 0
    num_threads: int = 0  # torch intra-op threads (0 = torch's default)
    device: str = "cpu"
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ConfigError("train.batch_size must be >= 0 (0 = the paper's default for the task)")
        if self.lr <= 0 or self.epochs < 1 or self.patience < 1:
            raise ConfigError("train.lr, train.batch_size, train.epochs and train.patience must be positive")
        if self.temperature <= 0:
            raise ConfigError("train.temperature must be > 0")
        if self.contrastive_weight < 0:
            raise ConfigError("train.contrastive_weight must be >= 0")
        if self.arousal_weight < 0:
            raise ConfigError("train.arousal_weight must be >= 0")
        if self.average_best < 0:
            raise ConfigError("train.average_best must be >= 0 (0 or 1: no averaging)")


@dataclass
class DataConfig:
    """Where the data is and how to read it."""

    path: str = ""
    format: DataFormat = "auto"
    max_len: int = 0  # steps per modality; 0 = as stored (unaligned data is resampled to this length)
    fold: int = 0  # CMDC: which of the subject-wise folds is the test fold
    n_folds: int = 5
    phq_threshold: float = 9.0  # CMDC: PHQ-9 >= threshold is the positive (depressed) class
    mmsa_labels: Literal["regression", "classification"] = "regression"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_len < 0:
            raise ConfigError("data.max_len must be >= 0")
        if not 0 <= self.fold < self.n_folds or self.n_folds < 3:
            raise ConfigError(f"data.fold must be in [0, {self.n_folds}) and data.n_folds >= 3")
