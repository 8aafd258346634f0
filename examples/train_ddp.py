"""Train on AG News with RNNTrainer in one process or data-parallel (DDP) under torchrun / accelerate.

The same script runs three ways; Trainer (through accelerate) reads the launcher's environment (RANK,
WORLD_SIZE, MASTER_ADDR, ...), starts the process group (gloo on CPUs, NCCL on GPUs), wraps the model in
DistributedDataParallel and gives every rank its share of each batch:

    python examples/train_ddp.py --train-file train.csv --eval-file test.csv --batch-size 32
    torchrun --nproc_per_node 2 examples/train_ddp.py --train-file train.csv --eval-file test.csv --batch-size 16
    accelerate launch --multi_gpu --num_processes 2 examples/train_ddp.py --train-file train.csv \\
        --eval-file test.csv --batch-size 16

(On a machine without GPUs, ``accelerate launch`` starts a single process unless given ``--multi_gpu``;
with it, the processes train on the CPU over gloo.)

``--batch-size`` is per process: with N processes the optimizer sees N times as many rows per step, so halve
it with 2 processes to train with the same effective batch as the single-process run.

Data: AG News CSVs as published by Zhang et al. (2015): no header, columns class 1-4, title, description;
the text is title + " " + description. Every rank builds the vocabulary from the training texts itself
(the same file and the same counting rules give the same vocabulary; ``--hash-dir`` records it).

``--stream`` reads the training file as a ``datasets`` stream instead (``load_dataset(..., streaming=True)``,
never materialised): the vocabulary comes from one streamed pass and the batches from
``bucket_stream`` (length bucketing inside a shuffle buffer); ``--max-steps`` is then required. Under DDP
every rank reads the stream and keeps its slice of each block of ``batch size x processes`` rows
(``dispatch_batches=False``), so ``bucket_stream`` groups whole blocks by length:

    torchrun --nproc_per_node 2 examples/train_ddp.py --train-file train.csv --eval-file test.csv \
        --batch-size 16 --stream --max-steps 500

``--hash-dir DIR`` makes every rank write ``DIR/rank{R}.json`` with SHA-256 digests of its vocabulary and
of its model's state_dict after training (the DDP test compares them); rank 0 writes ``--metrics-json``
and saves the model and tokenizer to ``--output-dir``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, load_dataset
from transformers import TrainingArguments, set_seed

from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer, bucket_stream
from rnn_textclf.metrics import make_compute_metrics

logger = logging.getLogger("train_ddp")

LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def read_ag_news(path: str, tokenizer: RNNTokenizer | None, max_length: int) -> tuple[Dataset, list[str]]:
    """Reads an AG News CSV; returns the tokenized rows (``input_ids``, ``length``, ``label``) and the texts."""
    raw = load_dataset(
        "csv", data_files=path, column_names=["label", "title", "description"], split="train", cache_dir=None
    )
    texts = [f"{t} {d}" for t, d in zip(raw["title"], raw["description"], strict=True)]
    labels = [int(v) - 1 for v in raw["label"]]
    ds = Dataset.from_dict({"text": texts, "label": labels})
    if tokenizer is not None:
        ds = ds.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=max_length, return_length=True),
            batched=True,
            remove_columns=["text"],
        )
    return ds, texts


def stream_ag_news(path: str, tokenizer: RNNTokenizer | None, max_length: int) -> Any:
    """An AG News CSV as a ``datasets.IterableDataset`` of text/label rows, tokenized when a tokenizer is given."""
    stream = load_dataset(
        "csv", data_files=path, column_names=["label", "title", "description"], split="train", streaming=True
    )
    stream = stream.map(
        lambda b: {
            "text": [f"{t} {d}" for t, d in zip(b["title"], b["description"], strict=True)],
            "label": [int(v) - 1 for v in b["label"]],
        },
        batched=True,
        remove_columns=["title", "description"],
    )
    if tokenizer is None:
        return stream
    return stream.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=max_length, return_length=True),
        batched=True,
        remove_columns=["text"],
    )


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the state_dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def vocab_sha256(tokenizer: RNNTokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def at_least(minimum: int, number: type = int, *, above: bool = False):
    """An argparse type: a number >= ``minimum`` (> with ``above``), so that an example's option errors are
    argparse's one line, not a traceback from torch."""
    expected = f"a number {'>' if above else '>='} {minimum}"

    def parse(text: str):
        try:
            value = number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-file", required=True, help="AG News CSV (no header: class, title, description)")
    p.add_argument("--eval-file", required=True, help="AG News CSV for evaluation")
    p.add_argument("--output-dir", default="ag-news-ddp", help="model + tokenizer (rank 0 writes)")
    p.add_argument("--batch-size", type=at_least(1), default=32, help="rows per process and step")
    p.add_argument("--eval-batch-size", type=at_least(1), default=128, help="rows per process in evaluation")
    p.add_argument("--epochs", type=at_least(0, float, above=True), default=2.0)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after N optimizer steps")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rnn-type", choices=["rnn", "lstm", "gru"], default="gru")
    p.add_argument("--hidden-size", type=at_least(1), default=32)
    p.add_argument("--embedding-dim", type=at_least(1), default=32)
    p.add_argument("--dropout", type=float, default=0.0, help="embedding and classifier dropout")
    p.add_argument("--min-freq", type=at_least(1), default=2)
    p.add_argument("--max-length", type=at_least(1), default=128)
    p.add_argument(
        "--group-by-length",
        action="store_true",
        help="length-grouped training batches (transformers' LengthGroupedSampler over per-process batches, "
        "so one process and DDP no longer see the same batches)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream the training file (datasets streaming + bucket_stream); needs --max-steps",
    )
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (GPUs with bf16 support)")
    p.add_argument("--dataloader-workers", type=at_least(0), default=0)
    p.add_argument("--hash-dir", help="every rank writes rank{R}.json with vocab and weight digests")
    p.add_argument("--metrics-json", help="rank 0 writes the evaluation metrics here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.stream and args.max_steps <= 0:
        raise SystemExit(
            "--stream needs --max-steps N: a stream has no length, so Trainer cannot count epochs."
        )
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING, format=f"[rank {rank}] %(message)s"
    )
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
        bf16=args.bf16,
        dataloader_num_workers=args.dataloader_workers,
        use_cpu=not torch.cuda.is_available(),
        # Every parameter takes part in each forward pass: spare DDP the search for unused ones.
        ddp_find_unused_parameters=False,
        # A stream under DDP: every rank reads it and keeps its share of each block of batch x world rows
        # (the default, rank 0 reading and sending batches, needs equal widths and broadcasts CPU lengths).
        accelerator_config={"dispatch_batches": False} if args.stream else None,
    )
    world = training_args.world_size
    logger.info(
        "world size %d (%s), %d rows per process per step, %d per optimizer step",
        world,
        training_args.parallel_mode.value,
        args.batch_size,
        args.batch_size * world,
    )
    set_seed(args.seed)
    if args.stream:
        # One streamed pass counts the words (bounded memory); the same rows give the same vocab on every rank.
        tokenizer = RNNTokenizer.train_from_dataset(
            stream_ag_news(args.train_file, None, args.max_length), text_column="text", min_freq=args.min_freq
        )
        rows = stream_ag_news(args.train_file, tokenizer, args.max_length).shuffle(
            seed=args.seed, buffer_size=10_000
        )
        # One length group per block of batch x world rows, the block each optimizer step shares out.
        train = bucket_stream(rows, batch_size=args.batch_size * world, seed=args.seed)
    else:
        # Every rank reads the files; main_process_first lets rank 0 fill the datasets cache alone.
        with training_args.main_process_first(desc="reading AG News"):
            _, train_texts = read_ag_news(args.train_file, None, args.max_length)
        tokenizer = RNNTokenizer.train_from_iterator(iter(train_texts), min_freq=args.min_freq)
        with training_args.main_process_first(desc="tokenizing"):
            train, _ = read_ag_news(args.train_file, tokenizer, args.max_length)
    with training_args.main_process_first(desc="tokenizing"):
        evaluation, _ = read_ag_news(args.eval_file, tokenizer, args.max_length)

    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        rnn_type=args.rnn_type,
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        bidirectional=True,
        pooling="max",
        embedding_dropout=args.dropout,
        classifier_dropout=args.dropout,
    )
    model = RNNClassifier(config)  # same seed on every rank; DDP also broadcasts rank 0's weights
    trainer = RNNTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,  # collator: PackedSequenceCollator(tokenizer)
        compute_metrics=make_compute_metrics("single_label_classification", LABELS),
    )
    result = trainer.train()
    metrics = trainer.evaluate()  # each rank scores its shard; the predictions are gathered in order
    metrics["train_loss"] = result.training_loss
    metrics["world_size"] = world
    metrics["global_step"] = trainer.state.global_step

    if args.hash_dir:
        Path(args.hash_dir).mkdir(parents=True, exist_ok=True)
        record = {
            "rank": training_args.process_index,
            "world_size": world,
            "vocab_size": len(tokenizer),
            "vocab_sha256": vocab_sha256(tokenizer),
            "state_dict_sha256": state_dict_sha256(trainer.model),
            "global_step": trainer.state.global_step,
        }
        (Path(args.hash_dir) / f"rank{training_args.process_index}.json").write_text(json.dumps(record))
    trainer.save_model(args.output_dir)  # writes on rank 0 only; every rank calls it (FSDP/DeepSpeed gather)
    if trainer.is_world_process_zero():
        if args.metrics_json:
            Path(args.metrics_json).write_text(json.dumps(metrics, indent=2, default=float) + "\n")
        logger.info(
            "eval accuracy %.4f, macro F1 %.4f, loss %.4f after %d steps",
            metrics["eval_accuracy"],
            metrics["eval_macro_f1"],
            metrics["eval_loss"],
            metrics["global_step"],
        )
    return metrics


if __name__ == "__main__":
    try:
        main()
    finally:
        # End the process group before the interpreter exits, as torch asks. (RNNTrainer also makes the
        # exit wait a moment without the GIL, so that gloo's threads drop their last work first.)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
