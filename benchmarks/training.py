"""Training-speed benchmark: the lecture's data pipeline vs rnn-textclf's, side by side in one run.

Same model everywhere (`--model rnn`, the lecture's size: RNNClassifier with embedding 50, nn.RNN 128,
last-state pooling; `--model bilstm`, the recipes' BiLSTM: LSTM 128 both ways, mean+max pooling, embedding
dropout 0.25, classifier dropout 0.3), batch 32, Adam 1e-3, trained on AG News texts (a seeded split of the
canonical test CSV in ../shared/data):

  (a) lecture   tokenize inside collate with Python basic_english + dict lookups, pad with lists, lengths from
                `nonzero()` per row, sort the batch, pack (random batches, as the lecture's DataLoader)
  (b) plain     pre-tokenized once (tokenizer batch call, like datasets.map), PackedSequenceCollator +
                BucketBatchSampler in a plain loop
      trainer   RNNTrainer, train_sampling_strategy="group_by_length", same lr and optimizer (AdamW with
                weight decay 0 is Adam), no clipping (max_grad_norm=0, as the plain loop; the Trainer still
                computes the gradient norm it logs), 1 epoch
  (c) limit     the bare model steps on the batches of (b), collated beforehand (no data pipeline at all)

Every round times all four back to back (the median over rounds counts), so a changing load on a shared
machine hits them alike. Prints one table (seconds per epoch, ratio to (c), padding fraction), the
Trainer's speed relative to the plain loop, and (for `--model rnn`) time-to-accuracy: the wall clock (a)
and (b) need to reach the accuracy (a) has after one epoch, evaluated every quarter epoch.

    python benchmarks/training.py [--model rnn|bilstm] [--repeats 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from rnn_textclf import (
    BucketBatchSampler,
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    RNNTrainer,
    basic_english_tokenize,
)
from rnn_textclf.data import stratified_split

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ag_news_csv" / "test.csv"

# torchtext's basic_english as the lecture used it: the package's pure-Python reference of those rules.
basic_english = basic_english_tokenize


def read_ag_news(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            labels.append(int(row[0]) - 1)
            texts.append(f"{row[1]} {row[2]}")
    return texts, labels


MODELS = {
    # the lecture's RNN: short steps, so any fixed cost per step shows
    "rnn": {"rnn_type": "rnn", "pooling": "last"},
    # the recipes' BiLSTM (bilstm-glove.yaml without the GloVe vectors)
    "bilstm": {
        "rnn_type": "lstm",
        "bidirectional": True,
        "pooling": "mean_max",
        "embedding_dropout": 0.25,
        "classifier_dropout": 0.3,
    },
}


def make_model(vocab_size: int, pad_id: int, seed: int, kind: str = "rnn") -> RNNClassifier:
    torch.manual_seed(seed)
    config = RNNClassifierConfig(
        vocab_size=vocab_size,
        embedding_dim=50,
        hidden_size=128,
        num_labels=4,
        pad_token_id=pad_id,
        **MODELS[kind],
    )
    return RNNClassifier(config)


def evaluate(model: RNNClassifier, batches: list) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], lengths=batch["lengths"]).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
    model.train()
    return correct / total


class Lecture:
    """The lecture's pipeline: Counter vocab, collate that tokenizes and pads with lists."""

    def __init__(self, texts: list[str], vocab: dict[str, int], pad: int, unk: int) -> None:
        self.vocab, self.pad, self.unk = vocab, pad, unk

    def collate(self, batch):
        label_list, text_list = [], []
        max_len = 0
        for label, text in batch:
            label_list.append(label)
            ids = [self.vocab.get(token, self.unk) for token in basic_english(text)]
            text_list.append(ids)
            max_len = max(max_len, len(ids))
        text_list = [ids + [self.pad] * (max_len - len(ids)) for ids in text_list]
        return torch.tensor(label_list, dtype=torch.int64), torch.tensor(text_list, dtype=torch.int64)

    @staticmethod
    def lengths_and_sort(labels, text):
        # the lecture: lengths from the last non-zero id of each row, then sort the batch by length
        lengths = torch.LongTensor([int(torch.max(text[i, :].nonzero())) + 1 for i in range(len(text))])
        lengths, order = lengths.sort(0, descending=True)
        return labels[order], text[order], lengths


def run_epoch(model, optimizer, batches, *, on_step=None) -> None:
    model.train()
    for step, batch in enumerate(batches):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument(
        "--model", choices=sorted(MODELS), default="rnn", help="the model trained (see above)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median counts")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    texts, labels = read_ag_news(Path(args.data))
    train_idx, eval_idx = stratified_split(labels, (0.8, 0.2), seed=0)
    train_texts, train_labels = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
    eval_texts, eval_labels = [texts[i] for i in eval_idx], [labels[i] for i in eval_idx]
    batch_size, lr = 32, 1e-3

    # ---- one-time preparation (reported separately: it happens once per data set, not per epoch)
    t0 = time.perf_counter()
    tokenizer = RNNTokenizer.train_from_iterator(iter(train_texts), min_freq=1)
    encoded = tokenizer(train_texts)["input_ids"]
    prep_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    counter = Counter()
    for text in train_texts:
        counter.update(basic_english(text))
    vocab = {"<pad>": 0, "<unk>": 1}
    for token, _ in sorted(sorted(counter.items()), key=lambda kv: -kv[1]):
        vocab[token] = len(vocab)
    prep_lecture = time.perf_counter() - t0
    assert len(vocab) == len(tokenizer), (len(vocab), len(tokenizer))  # the same vocab, built two ways

    collator = PackedSequenceCollator(tokenizer)
    eval_batches = [
        collator([{"input_ids": ids, "label": y} for ids, y in zip(chunk_ids, chunk_y, strict=True)])
        for chunk_ids, chunk_y in (
            (tokenizer(eval_texts[i : i + 256])["input_ids"], eval_labels[i : i + 256])
            for i in range(0, len(eval_texts), 256)
        )
    ]
    rows = [{"input_ids": ids, "label": y} for ids, y in zip(encoded, train_labels, strict=True)]
    lengths = np.array([len(ids) for ids in encoded])
    lecture = Lecture(train_texts, vocab, 0, 1)
    raw = list(zip(train_labels, train_texts, strict=True))

    def lecture_batches(seed: int):
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            raw, batch_size=batch_size, shuffle=True, collate_fn=lecture.collate, generator=gen
        )
        for y, text in loader:
            y, text, lens = Lecture.lengths_and_sort(y, text)
            yield {"input_ids": text, "lengths": lens, "labels": y}

    def ours_batches(seed: int):
        sampler = BucketBatchSampler(lengths, batch_size, seed=seed)
        return DataLoader(rows, batch_sampler=sampler, collate_fn=collator)

    results: dict[str, dict[str, float]] = {}

    def new_model(seed: int) -> RNNClassifier:
        return make_model(len(tokenizer), tokenizer.pad_token_id, seed=seed, kind=args.model)

    def one_epoch(make_batches, rep: int) -> tuple[float, float]:
        model = new_model(rep)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        batches = make_batches(rep)
        t0, c0 = time.perf_counter(), time.process_time()
        run_epoch(model, optimizer, batches)
        return time.perf_counter() - t0, time.process_time() - c0

    # Trainer: same model, batches grouped by length, one epoch, no eval/saving
    from datasets import Dataset
    from transformers import TrainingArguments

    ds = Dataset.from_dict({"input_ids": encoded, "label": train_labels, "length": lengths.tolist()})

    def trainer_epoch(rep: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as out:
            targs = TrainingArguments(
                out,
                per_device_train_batch_size=batch_size,
                learning_rate=lr,
                num_train_epochs=1,
                train_sampling_strategy="group_by_length",
                lr_scheduler_type="constant",
                optim="adamw_torch",
                weight_decay=0.0,
                max_grad_norm=0.0,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
                seed=rep,
                logging_strategy="no",
                use_cpu=True,
            )
            trainer = RNNTrainer(model=new_model(rep), args=targs, train_dataset=ds, data_collator=collator)
            t0, c0 = time.perf_counter(), time.process_time()
            trainer.train()
            return time.perf_counter() - t0, time.process_time() - c0

    # Padding of the bucketed batches (one epoch's worth), then the timed rounds.
    collator.reset_stats()
    premade = list(ours_batches(0))
    bucketed_padding = collator.padding_fraction
    variants = {
        "(a) lecture pipeline": lambda rep: one_epoch(lecture_batches, rep),
        "(b) rnn-textclf plain loop": lambda rep: one_epoch(ours_batches, rep),
        "(c) model steps only": lambda rep: one_epoch(lambda _: premade, rep),
        "(b) rnn-textclf RNNTrainer": trainer_epoch,
    }
    # Interleaved rounds: on a shared machine the load changes by the minute, so each round times every
    # variant back to back and the median over rounds is compared. CPU time (this process, one torch
    # thread) is also recorded: on a loaded machine it moves far less than the wall clock.
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu_times: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.repeats):
        for name, run in variants.items():
            wall, cpu = run(rep)
            times[name].append(wall)
            cpu_times[name].append(cpu)
    for name, values in times.items():
        results[name] = {
            "seconds": float(np.median(values)),
            "all_seconds": values,
            "cpu_seconds": float(np.median(cpu_times[name])),
            "all_cpu_seconds": cpu_times[name],
        }
    # Per round, so a load spike in one round does not decide the ratio
    trainer_speed_rounds = [
        plain / trainer
        for plain, trainer in zip(
            times["(b) rnn-textclf plain loop"], times["(b) rnn-textclf RNNTrainer"], strict=True
        )
    ]

    # padding of the lecture's random batches, for comparison
    random_padding = []
    rng = np.random.default_rng(0)
    order = rng.permutation(len(lengths))
    for i in range(0, len(order), batch_size):
        chunk = lengths[order[i : i + batch_size]]
        random_padding.append((chunk.max() * len(chunk) - chunk.sum(), chunk.max() * len(chunk)))
    random_fraction = sum(p for p, _ in random_padding) / sum(t for _, t in random_padding)

    limit = results["(c) model steps only"]["seconds"]
    for row in results.values():
        row["speed_vs_limit"] = limit / row["seconds"]
    results["(a) lecture pipeline"]["padding_fraction"] = random_fraction
    results["(b) rnn-textclf plain loop"]["padding_fraction"] = bucketed_padding
    results["(c) model steps only"]["padding_fraction"] = bucketed_padding

    # ---- time to accuracy: the accuracy (a) reaches after one epoch, checked every quarter epoch
    def time_to(make_batches, target: float | None, epochs: int = 3) -> tuple[float | None, float]:
        model = new_model(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        steps_per_epoch = math.ceil(len(rows) / batch_size)
        checks = {steps_per_epoch * q // 4 - 1 for q in (1, 2, 3, 4)}
        clock = {"train": 0.0, "reached": None, "last": 0.0}
        for epoch in range(epochs):
            t0 = time.perf_counter()
            for step, batch in enumerate(make_batches(epoch)):
                loss = model(**batch).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step in checks:
                    clock["train"] += time.perf_counter() - t0
                    acc = evaluate(model, eval_batches)
                    clock["last"] = acc
                    if target is not None and clock["reached"] is None and acc >= target:
                        clock["reached"] = clock["train"]
                    t0 = time.perf_counter()
            clock["train"] += time.perf_counter() - t0
            if target is None or clock["reached"] is not None:
                break
        return clock["reached"], clock["last"]

    lecture_acc = lecture_time = ours_time = ours_acc = None
    if args.model == "rnn":
        _, lecture_acc = time_to(lecture_batches, None, epochs=1)
        lecture_time, _ = time_to(lecture_batches, lecture_acc, epochs=1)
        ours_time, ours_acc = time_to(ours_batches, lecture_acc)

    model_name = {"rnn": "nn.RNN 128", "bilstm": "BiLSTM 128 mean+max"}[args.model]
    print(
        f"\nAG News ({len(rows)} train rows, {len(eval_texts)} eval rows), {model_name}, emb 50, batch {batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"one-time prep: lecture Counter vocab {prep_lecture:.2f}s | rnn-textclf vocab+encode {prep_ours:.2f}s"
    )
    print(f"{'variant':<30}{'s/epoch':>9}{'vs (c)':>8}{'CPU s':>8}{'padding':>9}")
    for name, row in results.items():
        pad = row.get("padding_fraction")
        print(
            f"{name:<30}{row['seconds']:>9.2f}{row['speed_vs_limit']:>8.2f}{row['cpu_seconds']:>8.2f}"
            f"{(f'{pad:.1%}' if pad is not None else '-'):>9}"
        )
    plain_row, trainer_row = results["(b) rnn-textclf plain loop"], results["(b) rnn-textclf RNNTrainer"]
    trainer_speed = plain_row["seconds"] / trainer_row["seconds"]
    trainer_cpu_speed = plain_row["cpu_seconds"] / trainer_row["cpu_seconds"]
    print(
        f"RNNTrainer speed vs the plain loop (medians): {trainer_speed:.2f}x wall clock, "
        f"{trainer_cpu_speed:.2f}x CPU time; wall clock per round: "
        + ", ".join(f"{r:.2f}x" for r in trainer_speed_rounds)
    )
    if lecture_acc is not None:
        print(
            f"time to {lecture_acc:.3f} eval accuracy (the lecture pipeline's 1-epoch accuracy): "
            f"lecture {lecture_time if lecture_time is not None else float('nan'):.1f}s, "
            f"rnn-textclf {ours_time if ours_time is not None else float('nan'):.1f}s (final acc {ours_acc:.3f})"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": len(rows),
                    "model": args.model,
                    "torch_threads": torch.get_num_threads(),
                    "variants": results,
                    "prep_seconds": {"lecture": prep_lecture, "rnn_textclf": prep_ours},
                    "trainer_speed_vs_plain_loop": trainer_speed,
                    "trainer_cpu_speed_vs_plain_loop": trainer_cpu_speed,
                    "trainer_speed_vs_plain_loop_rounds": trainer_speed_rounds,
                    "time_to_accuracy": {
                        "target": lecture_acc,
                        "lecture_s": lecture_time,
                        "rnn_textclf_s": ours_time,
                    },
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
