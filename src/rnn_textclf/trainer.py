"""``RNNTrainer``: a thin ``transformers.Trainer`` for recurrent classifiers, and the samplers it uses."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_pt_utils import LengthGroupedSampler

from .collator import PackedSequenceCollator

logger = logging.getLogger(__name__)

#: What ``RNNTrainer.save_model`` writes instead of transformers' pickled ``training_args.bin``.
TRAINING_ARGS_JSON = "training_args.json"


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
    - ``train_sampling_strategy="group_by_length"`` shuffles each epoch from ``(data_seed or seed) +
      epoch`` instead of the global RNG, so ``resume_from_checkpoint`` replays exactly the batches of
      an uninterrupted run (transformers' sampler would draw a resumed epoch's order from another RNG state).
    - The ``label_column`` of a ``PackedSequenceCollator`` (e.g. ``"topic"``) survives
      ``remove_unused_columns`` too, so the collator finds the labels it was told to read.
    - ``save_model`` (and each checkpoint) writes the training arguments as ``training_args.json``, not the
      pickled ``training_args.bin``: a model folder meant to be shared holds no pickle.
    - Without an accelerator, batches are not pinned (``dataloader_pin_memory`` is turned off): pinning
      does nothing on the CPU, and torch's ``DataLoader`` warns about it on every run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("data_collator") is None and kwargs.get("processing_class") is not None:
            kwargs["data_collator"] = PackedSequenceCollator(kwargs["processing_class"])
        super().__init__(*args, **kwargs)
        self._check_tokenizer_matches_model()
        self._no_pin_memory_without_accelerator()

    def _no_pin_memory_without_accelerator(self) -> None:
        # TrainingArguments pins batches by default; without an accelerator torch's DataLoader pins nothing
        # and warns on every run ("'pin_memory' argument is set as true but no accelerator is found").
        if self.args.dataloader_pin_memory and not torch.accelerator.is_available():
            self.args.dataloader_pin_memory = False

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
            if self.args.length_column_name not in self._signature_columns:
                self._signature_columns.append(self.args.length_column_name)
            # A collator told to read the labels from another column (label_column="topic") needs it.
            label_column = getattr(self.data_collator, "label_column", None)
            if isinstance(label_column, str) and label_column not in self._signature_columns:
                self._signature_columns.append(label_column)

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

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """``Trainer._save`` with the training arguments as ``training_args.json``, not a pickle.

        ``Trainer`` writes ``training_args.bin`` with ``torch.save`` into every folder ``save_model`` fills
        (the model folder a user shares, and each checkpoint); transformers never reads it back (resuming
        uses ``trainer_state.json``), so it is replaced by the same arguments as JSON
        (``TrainingArguments.to_json_string()``) and no pickle is left in a model folder.
        """
        super()._save(output_dir, state_dict=state_dict)
        if not self.args.should_save:
            return
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        (folder / TRAINING_ARGS_JSON).write_text(self.args.to_json_string() + "\n", encoding="utf-8")
        (folder / TRAINING_ARGS_NAME).unlink(missing_ok=True)

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
