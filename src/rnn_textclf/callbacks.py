"""Trainer callbacks behind [`RNNTrainingArguments`][rnn_textclf.RNNTrainingArguments]' techniques.

[`RNNTrainer`][rnn_textclf.RNNTrainer] adds them from its arguments; nothing needs to be registered by
hand. They are ordinary ``transformers.TrainerCallback`` s, so their effects show in the Trainer's flow
(``control.should_training_stop``, ``should_evaluate``, ``should_save``) like any other callback's.
`ProgressBarsCallback` (progress bars without printed log dicts) is for runs that report their losses
another way, such as the command line's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

logger = logging.getLogger(__name__)


def current_epoch(state: TrainerState) -> int:
    """The 0-based epoch the Trainer is in (``state.epoch`` is fractional during an epoch, ``e.0`` at its start)."""
    # The last step of epoch e-1 sets state.epoch to exactly e; mid-epoch it is e + fraction.
    return int((state.epoch or 0.0) + 1e-9)


class EMACallback(TrainerCallback):
    """Keeps an exponential moving average of the model's weights (``RNNTrainingArguments.ema_decay``).

    After every optimizer step: ``average = decay * average + (1 - decay) * weights`` with
    ``decay = min(ema_decay, (1 + step) / (10 + step))``, ``step`` being the number of optimizer steps
    before this one. Parameters that do not train (a frozen embedding) are skipped: their average stays
    their value. ``RNNTrainer`` swaps the average in for evaluation and saving
    ([`swapped_in`][rnn_textclf.callbacks.EMACallback.swapped_in]) and leaves it in the model when training
    ends (unless ``load_best_model_at_end`` loaded a best checkpoint, which holds an average too).

    Args:
        decay: The decay ``ema_decay``, in (0, 1).
    """

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)
        self.average: list[torch.Tensor] | None = None
        self._names: list[str] = []
        self._weights: list[torch.Tensor] = []
        self._params: list[torch.nn.Parameter] = []
        self._resume: dict[str, torch.Tensor] | None = None
        self._swapped = False

    @property
    def active(self) -> bool:
        """Whether an average is being kept (between the start and the end of training)."""
        return self.average is not None

    def resume_from(self, average: dict[str, torch.Tensor]) -> None:
        """Starts the next training run from this average (parameter name -> tensor), as saved in a checkpoint."""
        self._resume = average

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The average by parameter name (empty when none is kept)."""
        if self.average is None:
            return {}
        return dict(zip(self._names, self.average, strict=True))

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        named = list(model.named_parameters())
        self._names = [name for name, _ in named]
        self._params = [param for _, param in named]
        # Views sharing the parameters' storage, for the in-place average and swaps.
        self._weights = [param.detach() for param in self._params]
        if self._resume is not None:
            missing = sorted(set(self._names) - set(self._resume))
            if missing:
                raise ValueError(
                    f"The checkpoint's weight average lacks the parameters {missing}: it was saved for another model."
                )
            self.average = [
                self._resume[name].to(device=w.device, dtype=w.dtype).clone()
                for name, w in zip(self._names, self._weights, strict=True)
            ]
            self._resume = None
        else:
            self.average = [w.clone() for w in self._weights]

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.average is None:
            return
        # state.global_step still counts the steps before this one here (it is raised after the callback).
        decay = min(self.decay, (1 + state.global_step) / (10 + state.global_step))
        trained = [i for i, param in enumerate(self._params) if param.requires_grad]
        with torch.no_grad():
            torch._foreach_lerp_(
                [self.average[i] for i in trained], [self._weights[i] for i in trained], 1.0 - decay
            )

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Puts the averaged weights into the model for the ``with`` block, then the trained ones back.

        Does nothing when no average is kept (outside training) or it is already swapped in.
        """
        if self.average is None or self._swapped:
            yield
            return
        with torch.no_grad():
            trained = [w.clone() for w in self._weights]
            torch._foreach_copy_(self._weights, self.average)
        self._swapped = True
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._weights, trained)
            self._swapped = False

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.average is None:
            return
        # With load_best_model_at_end the Trainer has just loaded the best checkpoint's model.safetensors,
        # which RNNTrainer saved with the average swapped in: the model already holds an average.
        if not (args.load_best_model_at_end and state.best_model_checkpoint is not None):
            with torch.no_grad():
                torch._foreach_copy_(self._weights, self.average)
        self.average = None
        self._weights, self._params = [], []


class EmbeddingFreezeCallback(TrainerCallback):
    """Freezes the input embedding for the first epochs (``RNNTrainingArguments.embedding_freeze_epochs``).

    ``freeze_epochs > 0``: frozen in epochs ``0 .. freeze_epochs - 1``, trained from epoch
    ``freeze_epochs`` on; ``-1``: frozen throughout. The embedding's ``requires_grad`` and the model's
    ``config.freeze_embeddings`` change together, so the saved config tells the state the embedding is in.
    ``RNNTrainer`` also applies the schedule before it builds the optimizer and wraps the model (DDP
    registers the parameters that need gradients when it wraps).

    Args:
        freeze_epochs: ``-1`` or a positive number of epochs.
    """

    def __init__(self, freeze_epochs: int) -> None:
        self.freeze_epochs = int(freeze_epochs)

    def frozen_in(self, epoch: int) -> bool:
        """Whether the embedding is frozen in the 0-based ``epoch``."""
        return self.freeze_epochs == -1 or epoch < self.freeze_epochs

    def apply(self, model: Any, epoch: int) -> None:
        """Sets the embedding's ``requires_grad`` and ``config.freeze_embeddings`` for the 0-based ``epoch``."""
        weight = model.get_input_embeddings().weight
        frozen = self.frozen_in(epoch)
        if weight.requires_grad == frozen:
            logger.info(
                "Embedding %s from epoch %d", "frozen" if frozen else "unfrozen (fine-tuned)", epoch + 1
            )
            weight.requires_grad_(not frozen)
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "freeze_embeddings"):
            config.freeze_embeddings = frozen

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        epochs = state.num_train_epochs
        if self.freeze_epochs > 0 and epochs and self.freeze_epochs >= epochs:
            logger.warning(
                "embedding_freeze_epochs=%d covers the whole run (%d epochs): the embedding stays frozen. Say so with "
                "embedding_freeze_epochs=-1, or freeze fewer epochs than the run trains.",
                self.freeze_epochs,
                epochs,
            )
        self.apply(model, current_epoch(state))

    def on_epoch_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        self.apply(model, current_epoch(state))


class TimeBudgetCallback(TrainerCallback):
    """Stops training before it passes a wall-clock budget (``RNNTrainingArguments.max_train_seconds``).

    At the end of each epoch it stops when another epoch at the pace of the last one would end past the
    budget; after any optimizer step it stops once the budget is spent. The stop comes with an
    evaluation (unless ``eval_strategy="no"``) and a save (``save_strategy`` ``"steps"`` or ``"epoch"``)
    of the last step, unless that step was just evaluated or saved, so ``load_best_model_at_end`` and
    ``EarlyStoppingCallback`` see every trained step. The clock starts when ``train()`` starts training.

    Args:
        max_seconds: The budget in seconds.
    """

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = float(max_seconds)
        self.started = self.epoch_started = time.monotonic()
        self.stopped_early = False
        self._evaluated_at = self._saved_at = -1

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.started = self.epoch_started = time.monotonic()
        self.stopped_early = False
        self._evaluated_at = self._saved_at = -1

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.epoch_started = time.monotonic()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if time.monotonic() - self.started > self.max_seconds and state.global_step < state.max_steps:
            # Leave the epoch now; on_epoch_end (always called) evaluates and saves.
            control.should_training_stop = True
            self.stopped_early = True

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._evaluated_at = state.global_step

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._saved_at = state.global_step

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        now = time.monotonic()
        elapsed, last_epoch = now - self.started, now - self.epoch_started
        if state.global_step >= state.max_steps:
            return  # the run ends here anyway
        if not self.stopped_early and elapsed + last_epoch <= self.max_seconds:
            return
        logger.info(
            "Stopping after %.0f s at step %d (epoch %.2f): %s max_train_seconds=%s.",
            elapsed,
            state.global_step,
            state.epoch or 0.0,
            "the budget is spent," if self.stopped_early else "another epoch at this pace would pass",
            self.max_seconds,
        )
        self.stopped_early = True
        control.should_training_stop = True
        # Epoch strategies are handled by DefaultFlowCallback.on_epoch_end; step strategies only act on
        # their interval, so the last steps would be neither evaluated nor saved.
        if args.eval_strategy == "steps" and self._evaluated_at != state.global_step:
            control.should_evaluate = True
        if args.save_strategy == "steps" and self._saved_at != state.global_step:
            control.should_save = True


class ProgressBarsCallback(ProgressCallback):
    """The Trainer's progress bars without the log dicts that ``ProgressCallback`` also prints.

    For runs that report their losses another way (the CLI's table and epoch lines,
    [`Recipe.pretrain`][rnn_textclf.recipes.Recipe.pretrain]'s summary): use it instead of the
    Trainer's ``ProgressCallback``, not beside it.
    """

    def on_log(self, *args: Any, **kwargs: Any) -> None:
        return None


def without_log_dicts(trainer: Any) -> None:
    """Stop ``trainer`` printing its log dicts: ``PrinterCallback`` (there with ``disable_tqdm``) goes, and
    ``ProgressCallback`` (there otherwise) becomes a `ProgressBarsCallback`, added after the other callbacks.
    """
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(ProgressBarsCallback())


__all__ = [
    "EMACallback",
    "EmbeddingFreezeCallback",
    "ProgressBarsCallback",
    "TimeBudgetCallback",
    "current_epoch",
    "without_log_dicts",
]
