"""``RNNTrainer``: a thin ``transformers.Trainer`` for recurrent classifiers, and the samplers it uses."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from .collator import PackedSequenceCollator
from .distillation import TEACHER_LOGITS_COLUMN, distillation_loss

logger = logging.getLogger(__name__)


class _EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """transformers' ``LengthGroupedSampler`` whose order depends only on ``seed + epoch``.

    The stock sampler draws each epoch's order from the global torch RNG when the epoch starts. A run
    resumed in epoch ``e > 0`` starts its first epoch from another RNG state than the interrupted run
    had at that point, so it would train on other batches. Seeding per epoch (``set_epoch``, which the
    Trainer's data loader calls) makes the order of every epoch reproducible on its own.
    """

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


class RNNTrainer(Trainer):
    """A thin ``transformers.Trainer`` for recurrent classifiers.

    Differences from ``Trainer``, each for a reason:

    - Evaluation and prediction always run in data-set order. In transformers 5.x,
      ``train_sampling_strategy="group_by_length"`` also makes ``Trainer`` evaluate with a
      ``LengthGroupedSampler``, so ``Trainer.predict(ds).predictions[i]`` no longer belongs to ``ds[i]``.
      ``RNNTrainer`` groups only the training batches by length.
    - The tokenizer's ``length`` column (``tokenizer(..., return_length=True)``) survives
      ``remove_unused_columns`` so the length-grouped sampler reads it instead of measuring every row.
    - ``lengths`` stay on the CPU when batches move to the accelerator, so packing needs no
      device-to-host copy. Under multi-GPU DDP they go to the model as a NumPy array: DDP moves every
      tensor argument to its GPU, and the model would have to copy the lengths back at every step.
    - With no ``data_collator`` but a ``processing_class`` (the tokenizer), it uses
      [`PackedSequenceCollator`][rnn_textclf.PackedSequenceCollator].
    - The tokenizer and the model must agree: a tokenizer with more tokens than ``config.vocab_size``
      (ids the embedding does not have) or another pad id raises ``ValueError`` here, not an opaque
      error mid-training; a smaller tokenizer logs a warning (fine for an embedding padded to a round
      size, a silent mismatch otherwise). A ``PackedSequenceCollator`` gets the model's ``num_labels``
      so bad class ids are caught on the CPU.
    - Knowledge distillation: with ``RNNTrainingArguments(distillation_alpha=...)``, batches that carry a
      ``teacher_logits`` column (kept through ``remove_unused_columns``) train on the teacher's signal
      (see ``compute_loss``).
    - ``train_sampling_strategy="group_by_length"`` shuffles each epoch from ``(data_seed or seed) +
      epoch`` instead of the global RNG, so ``resume_from_checkpoint`` replays exactly the batches of
      an uninterrupted run (transformers' sampler would draw a resumed epoch's order from another RNG state).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("data_collator") is None and kwargs.get("processing_class") is not None:
            kwargs["data_collator"] = PackedSequenceCollator(kwargs["processing_class"])
        super().__init__(*args, **kwargs)
        self._warned_unused_teacher = False
        self._check_tokenizer_matches_model()

    def _check_tokenizer_matches_model(self) -> None:
        config = getattr(self.model, "config", None)
        tokenizer = self.processing_class
        vocab_size = getattr(config, "vocab_size", None)
        if tokenizer is not None and isinstance(vocab_size, int) and hasattr(tokenizer, "get_vocab"):
            size = len(tokenizer)
            if size > vocab_size:
                raise ValueError(
                    f"The tokenizer has {size:,} tokens but the model's embedding has config.vocab_size="
                    f"{vocab_size:,} rows: ids >= {vocab_size:,} would not exist. Pass the tokenizer the model was "
                    f"built for, or build the model with RNNClassifierConfig(vocab_size={size}, ...)."
                )
            if size < vocab_size:
                logger.warning(
                    "The tokenizer has %s tokens but config.vocab_size is %s: the last %s embedding rows are never "
                    "used. Fine if the embedding was padded on purpose; otherwise this is not the tokenizer the "
                    "model was built for (ids would mean other words).",
                    f"{size:,}",
                    f"{vocab_size:,}",
                    f"{vocab_size - size:,}",
                )
            pad = getattr(tokenizer, "pad_token_id", None)
            model_pad = getattr(config, "pad_token_id", None)
            if getattr(config, "model_type", None) == "rnn_textclf" and pad is not None and pad != model_pad:
                raise ValueError(
                    f"The tokenizer's pad_token_id is {pad} but config.pad_token_id is {model_pad}: the model would "
                    f"keep token {model_pad}'s embedding at zero, untrained. Build the model with "
                    f"RNNClassifierConfig(pad_token_id={pad}, ...)."
                )
        collator = self.data_collator
        num_labels = getattr(config, "num_labels", None)
        if (
            isinstance(collator, PackedSequenceCollator)
            and collator.num_labels is None
            and isinstance(num_labels, int)
            and num_labels > 1
            and getattr(config, "problem_type", None) != "regression"
        ):
            collator.num_labels = num_labels

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler and sampler.generator is None:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return _EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if self.args.train_sampling_strategy == "group_by_length" and eval_dataset is not None:
            if self.args.world_size <= 1:
                return torch.utils.data.SequentialSampler(eval_dataset)
            # Distributed: accelerate shards sequentially and gathers the results back in order.
            return None
        return super()._get_eval_sampler(eval_dataset)

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            for name in (self.args.length_column_name, TEACHER_LOGITS_COLUMN):
                if name not in self._signature_columns:
                    self._signature_columns.append(name)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """``Trainer.compute_loss``, or the distillation loss when the batch carries ``teacher_logits``.

        With ``args.distillation_alpha`` set and ``teacher_logits`` in the batch (a data set with
        [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits]'s column), the loss is
        [`distillation_loss`][rnn_textclf.distillation.distillation_loss] (``distillation_temperature``,
        ``distillation_loss``; the hard term keeps ``label_smoothing_factor``). Batches without the
        column (evaluation on a plain validation set) get the ordinary loss.
        """
        teacher = inputs.pop(TEACHER_LOGITS_COLUMN, None) if isinstance(inputs, Mapping) else None
        alpha = getattr(self.args, "distillation_alpha", None)
        if teacher is None or alpha is None:
            if teacher is not None and not self._warned_unused_teacher:
                self._warned_unused_teacher = True
                logger.warning(
                    "The batches carry %r but distillation_alpha is None: the teacher's logits are ignored. "
                    "Set RNNTrainingArguments(distillation_alpha=...) to distil.",
                    TEACHER_LOGITS_COLUMN,
                )
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        config = getattr(self.model, "config", None)
        if getattr(config, "problem_type", None) not in (None, "single_label_classification"):
            raise ValueError(
                f"Distillation needs a single-label classifier; this model's problem_type is "
                f"{config.problem_type!r}. Train it without teacher_logits or distillation_alpha."
            )
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        smoothing = float(self.args.label_smoothing_factor or 0.0)
        loss = distillation_loss(
            outputs["logits"],
            teacher,
            labels,
            alpha=float(alpha),
            temperature=float(getattr(self.args, "distillation_temperature", 1.0)),
            kind=getattr(self.args, "distillation_loss", "kl"),
            hard_loss=(
                (
                    lambda logits, target: F.cross_entropy(
                        logits, target, label_smoothing=smoothing, reduction="none"
                    )
                )
                if smoothing
                else None
            ),
        )
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, **kwargs: Any) -> None:
        """Writes rnn-textclf's model card (not transformers' generic one) to ``args.output_dir/README.md``.

        The card has the Trainer's hyperparameters, evaluation results and ``model-index`` metadata
        (as ``Trainer.create_model_card``) plus the model's architecture, tokenizer and usage, with
        ``library_name: rnn-textclf``. ``RNNTrainer.push_to_hub`` calls it before uploading.

        Args:
            **kwargs: ``Trainer.create_model_card``'s arguments (``language``, ``license``, ``tags``,
                ``model_name``, ``finetuned_from``, ``tasks``, ``dataset_tags``, ``dataset``,
                ``dataset_args``) and any ``rnn_textclf.modelcard.CARD_INFO_KEYS`` field.
        """
        from .modelcard import write_trainer_model_card

        write_trainer_model_card(self, **kwargs)

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        lengths = inputs.get("lengths") if isinstance(inputs, Mapping) else None
        if isinstance(lengths, torch.Tensor) and lengths.device.type == "cpu":
            rest = type(inputs)({k: v for k, v in inputs.items() if k != "lengths"})
            prepared = super()._prepare_inputs(rest)
            # DDP with device_ids (one GPU per process) moves tensor arguments, not NumPy arrays.
            ddp_moves_tensors = bool(getattr(self.model_wrapped, "device_ids", None))
            prepared["lengths"] = lengths.numpy() if ddp_moves_tensors else lengths
            return prepared
        return super()._prepare_inputs(inputs)


__all__ = ["RNNTrainer"]
