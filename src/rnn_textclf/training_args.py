"""``RNNTrainingArguments``: ``transformers.TrainingArguments`` plus the options of ``RNNTrainer``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from .distillation import _check_distillation_options


@dataclass
class RNNTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the options [`RNNTrainer`][rnn_textclf.RNNTrainer] adds.

    Args:
        distillation_alpha: Knowledge distillation (Hinton et al. 2015; Tang et al. 2019): the weight of
            the teacher's signal against the hard labels on batches that carry ``teacher_logits``
            (see [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits]). ``1.0`` trains on
            the teacher alone, so rows without a label (``-100``: augmented copies, unlabelled texts)
            can be used; such rows get the teacher's term only whatever ``alpha``. ``None`` (default):
            off, the ``teacher_logits`` column is ignored.
        distillation_temperature: Softening temperature ``T > 0`` of the ``"kl"`` loss (the term is
            multiplied by ``T**2``). Default 1.0.
        distillation_loss: ``"kl"`` (KL divergence between the softened probabilities, Hinton et al.)
            or ``"mse"`` (mean squared error between the logits, as Tang et al.). Default ``"kl"``.
    """

    distillation_alpha: float | None = field(
        default=None,
        metadata={
            "help": "Weight of the teacher's logits vs the hard labels (1.0: teacher only; None: off)."
        },
    )
    distillation_temperature: float = field(
        default=1.0, metadata={"help": "Softening temperature of the KL distillation loss."}
    )
    distillation_loss: Literal["kl", "mse"] = field(
        default="kl", metadata={"help": "'kl' on softened probabilities (x T^2) or 'mse' on logits."}
    )

    def __post_init__(self) -> None:
        _check_distillation_options(
            self.distillation_alpha, self.distillation_temperature, self.distillation_loss
        )
        super().__post_init__()


__all__ = ["RNNTrainingArguments"]
