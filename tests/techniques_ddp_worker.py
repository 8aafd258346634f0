"""Trains with RNNTrainingArguments' techniques on AG News rows; run alone or under torchrun (gloo).

Used by tests/test_training_args.py: two processes at ``--batch-size 16`` must end with the weights of
one process at 32 (see tests/test_distributed.py for why they may). ``--distill`` adds a
``teacher_logits`` column (seeded, leaning to each row's label) and trains with the distillation loss too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import torch
from datasets import Dataset

from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer, RNNTrainingArguments
from rnn_textclf.cli import _close_process_group


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--distill", action="store_true")
    options = parser.parse_args(argv)
    with open(options.data, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[:256]
    texts = [f"{title} {description}" for _, title, description in rows]
    labels = [int(label) - 1 for label, _, _ in rows]
    tokenizer = RNNTokenizer.train_from_iterator(iter(texts))
    columns = {"text": texts, "label": labels}
    distill = {}
    if options.distill:
        # The same column in every process: a teacher's logits, noisy but mostly right.
        logits = torch.randn(len(texts), 4, generator=torch.Generator().manual_seed(1))
        logits[torch.arange(len(texts)), torch.tensor(labels)] += 2.0
        columns["teacher_logits"] = logits.tolist()
        distill = {"distillation_alpha": 0.5, "distillation_temperature": 2.0}
    train = Dataset.from_dict(columns).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=48), batched=True
    )
    torch.manual_seed(0)
    model = RNNClassifier(
        RNNClassifierConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            unk_token_id=tokenizer.unk_token_id,
            num_labels=4,
            embedding_dim=16,
            hidden_size=16,
            rnn_type="lstm",
            bidirectional=True,
            pooling="mean_max",
        )
    )
    args = RNNTrainingArguments(
        options.output_dir,
        adversarial_eps=1.0,
        ema_decay=0.9,
        embedding_lr_scale=0.5,
        label_smoothing_factor=0.1,
        per_device_train_batch_size=options.batch_size,
        learning_rate=5e-3,
        num_train_epochs=1,
        seed=0,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        **distill,
    )
    start = model.classifier.weight.detach().clone()
    trainer = RNNTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    distilled = []
    compute_loss = trainer.compute_loss

    def counting(model, inputs, *args, **kwargs):
        distilled.append("teacher_logits" in inputs)
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = counting
    trainer.train()
    trainer.save_model()
    if trainer.is_world_process_zero():
        summary = {
            "world_size": args.world_size,
            "global_step": trainer.state.global_step,
            "classifier_change": float((model.classifier.weight.detach() - start).abs().max()),
            "loss_calls": len(distilled),
            "distilled_calls": sum(distilled),
        }
        with open(os.path.join(options.output_dir, "summary.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    finally:
        # End the process group, as the CLI does (see the helper).
        _close_process_group()
