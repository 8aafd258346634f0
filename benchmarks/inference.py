"""CPU inference benchmark: fp32 eager vs dynamic int8 vs onnxruntime, side by side in one run.

One model, trained here on real data: a BiLSTM with max pooling (embedding 100, hidden 128 or
``--hidden-size``), trained for one epoch on 6,080 rows of a seeded stratified split of the canonical AG
News test CSV (../shared/data/ag_news_csv/test.csv, text = title + " " + description) and evaluated on
the other 1,520.
The same trained weights are then served four ways, through the same batch API (``model(**batch).logits``
on PackedSequenceCollator batches):

  fp32 eager        RNNClassifier (packed sequences)
  int8 eager        rnn_textclf.quantize_dynamic (torch.ao dynamic int8 LSTM + Linear)
  onnxruntime fp32  rnn_textclf.export_onnx + OnnxClassifier
  onnxruntime int8  rnn_textclf.quantize_onnx (onnxruntime's DynamicQuantizeLSTM + int8 MatMul)

For each: test accuracy, file size, and texts/s at batch sizes 1, 32 and 256 (texts in data-set order, so
batches mix lengths as live traffic does; tokenization excluded and reported once). Timings are
interleaved: every round times each variant once, in a rotating order, and the table shows medians over
the rounds plus the median of the per-round speed ratios to fp32 eager, which is robust to other load on
a shared machine. ``--threads`` sets torch's and onnxruntime's intra-op threads (several values: one
block per value).

    python benchmarks/inference.py [--threads 1 2] [--repeats 5] [--hidden-size 128] [--json results.json] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from rnn_textclf import (
    BucketBatchSampler,
    OnnxClassifier,
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    export_onnx,
    quantize_dynamic,
    quantize_onnx,
)
from rnn_textclf.data import stratified_split
from rnn_textclf.tokenization import RNNTokenizer

logger = logging.getLogger("benchmarks.inference")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ag_news_csv" / "test.csv"
VARIANTS = ("fp32 eager", "int8 eager", "onnxruntime fp32", "onnxruntime int8")
TARGET_SPEEDUP, TARGET_LOSS_POINTS = 2.0, 0.3


def read_ag_news(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [f"{title} {description}" for _, title, description in rows], np.array(
        [int(r[0]) - 1 for r in rows]
    )


def model_config(tokenizer: RNNTokenizer, hidden_size: int) -> RNNClassifierConfig:
    """The benchmarked shape: BiLSTM with max pooling, embedding 100, AG News's four labels."""
    return RNNClassifierConfig(
        vocab_size=len(tokenizer),
        embedding_dim=100,
        hidden_size=hidden_size,
        rnn_type="lstm",
        bidirectional=True,
        pooling="max",
        num_labels=4,
        pad_token_id=tokenizer.pad_token_id,
        id2label={0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"},
    )


def train(
    tokenizer: RNNTokenizer,
    ids: list[list[int]],
    labels: np.ndarray,
    epochs: int,
    seed: int,
    hidden_size: int,
) -> tuple[RNNClassifier, float]:
    torch.manual_seed(seed)
    model = RNNClassifier(model_config(tokenizer, hidden_size))
    collator = PackedSequenceCollator(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    sampler = BucketBatchSampler([len(row) for row in ids], batch_size=32, seed=seed)
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for indices in sampler:
            batch = collator([{"input_ids": ids[i], "labels": int(labels[i])} for i in indices])
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), time.perf_counter() - start


def make_batches(collator: PackedSequenceCollator, ids: list[list[int]], size: int) -> list[dict[str, Any]]:
    return [
        dict(collator([{"input_ids": row} for row in ids[i : i + size]])) for i in range(0, len(ids), size)
    ]


def predict(model: Any, batches: list[dict[str, Any]]) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model(**batch).logits for batch in batches]).argmax(-1).numpy()


def run_batches(model: Any, batches: list[dict[str, Any]]) -> None:
    with torch.inference_mode():
        for batch in batches:
            model(**batch)


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.suffix in (".safetensors", ".onnx")]
    return sum(p.stat().st_size for p in files) / 1e6


def timed_rounds(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call per round; every round calls each function once, in a rotating order.

    Interleaving spreads other load on a shared machine over all functions alike. No warm-up: call
    each function once before.
    """
    names = list(fns)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            fns[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def throughput(
    models: dict[str, Any], batches: list[dict[str, Any]], repeats: int
) -> dict[str, dict[str, float]]:
    n = sum(len(batch["input_ids"]) for batch in batches)
    for model in models.values():  # warm-up: first-call allocations, lazy initialisation
        run_batches(model, batches[:1])
    seconds = timed_rounds({name: lambda m=m: run_batches(m, batches) for name, m in models.items()}, repeats)
    rates = {name: [n / value for value in values] for name, values in seconds.items()}
    base = rates[next(iter(models))]
    return {
        name: {
            "texts_per_s": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "ratio_to_fp32": statistics.median(v / b for v, b in zip(values, base, strict=True)),
        }
        for name, values in rates.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DATA, help="AG News test.csv (class, title, description)"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="intra-op threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (default: 5)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hidden-size",
        type=int,
        default=128,
        help="LSTM hidden size (default: 128, the recipes' size; int8's gain grows with it)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1,000 train rows, 300 test rows, 2 rounds"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    warnings.filterwarnings("ignore", message=r".*consider to run pre-processing before quantization.*")
    logger.setLevel(logging.INFO)
    hf_logging.disable_progress_bar()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
    if not args.data.is_file():
        parser.error(f"--data {str(args.data)!r} does not exist")
    if args.hidden_size < 1:
        parser.error(f"--hidden-size must be a positive integer, got {args.hidden_size}")
    load_before = os.getloadavg()
    wall = time.perf_counter()

    texts, labels = read_ag_news(args.data)
    train_idx, test_idx = stratified_split(labels, (0.8, 0.2), args.seed)
    if args.quick:
        train_idx, test_idx = train_idx[::6], test_idx[::5]
    single_count = 25 if args.quick else 200
    repeats = 2 if args.quick else args.repeats

    tokenizer = RNNTokenizer.train_from_iterator((texts[i] for i in train_idx), min_freq=2)
    start = time.perf_counter()
    test_ids = tokenizer([texts[i] for i in test_idx], truncation=True, max_length=256)["input_ids"]
    collator = PackedSequenceCollator(tokenizer)
    make_batches(collator, test_ids, 32)
    tokenize_rate = len(test_ids) / (time.perf_counter() - start)
    train_ids = tokenizer([texts[i] for i in train_idx], truncation=True, max_length=256)["input_ids"]
    test_labels = labels[test_idx]

    torch.set_num_threads(args.threads[0])
    logger.info(
        "training on %d rows (%d epoch(s), %d thread(s))...", len(train_ids), args.epochs, args.threads[0]
    )
    model, train_seconds = train(
        tokenizer, train_ids, labels[train_idx], args.epochs, args.seed, args.hidden_size
    )

    work = Path(tempfile.mkdtemp(prefix="rnn-textclf-inference-"))
    model.save_pretrained(work / "fp32")
    int8 = quantize_dynamic(model)
    int8.save_pretrained(work / "int8")
    onnx_path = export_onnx(model, work / "fp32.onnx")
    onnx_int8_path = quantize_onnx(onnx_path, work / "int8.onnx")
    files = {
        "fp32 eager": work / "fp32",
        "int8 eager": work / "int8",
        "onnxruntime fp32": onnx_path,
        "onnxruntime int8": onnx_int8_path,
    }

    def models_for(threads: int) -> dict[str, Any]:
        return {
            "fp32 eager": model,
            "int8 eager": int8,
            "onnxruntime fp32": OnnxClassifier(onnx_path, num_threads=threads),
            "onnxruntime int8": OnnxClassifier(onnx_int8_path, num_threads=threads),
        }

    eval_batches = make_batches(collator, test_ids, 256)
    accuracy = {
        name: float((predict(m, eval_batches) == test_labels).mean()) for name, m in models_for(1).items()
    }
    agreement = float((predict(model, eval_batches) == predict(int8, eval_batches)).mean())

    speed: dict[int, dict[int, dict[str, dict[str, float]]]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        models = models_for(threads)
        speed[threads] = {}
        for size in args.batch_sizes:
            # Batch 1: a few hundred texts are enough; batch 32: 20 batches; larger: the whole test set.
            subset = test_ids[: single_count if size == 1 else 640 if size <= 32 else len(test_ids)]
            logger.info("timing batch size %d on %d texts, %d thread(s)...", size, len(subset), threads)
            speed[threads][size] = throughput(models, make_batches(collator, subset, size), repeats)
    load_after = os.getloadavg()

    # ------------------------------------------------------------------ report
    base_acc = accuracy["fp32 eager"]
    print(
        f"\nAG News: {len(train_ids):,} train / {len(test_ids):,} test rows; BiLSTM-max, embedding 100, hidden {args.hidden_size}, "
        f"{args.epochs} epoch(s) in {train_seconds:.0f} s; torch {torch.__version__}, "
        f"onnxruntime {__import__('onnxruntime').__version__}, {os.cpu_count()} CPUs, load {load_before[0]:.1f}"
    )
    print(f"tokenize + collate (not in the rates below): {tokenize_rate:,.0f} texts/s")
    for threads, by_size in speed.items():
        sizes = list(by_size)
        print(
            f"\nthreads={threads}, median of {repeats} interleaved rounds (x = median per-round ratio to fp32 eager)"
        )
        header = f"{'variant':<18} {'accuracy':>8} {'d pts':>6} {'file MB':>8}" + "".join(
            f" {'bs=' + str(s) + ' texts/s':>15} {'x':>5}" for s in sizes
        )
        print(header)
        print("-" * len(header))
        for name in VARIANTS:
            cells = "".join(
                f" {by_size[s][name]['texts_per_s']:>15,.0f} {by_size[s][name]['ratio_to_fp32']:>5.2f}"
                for s in sizes
            )
            print(
                f"{name:<18} {accuracy[name]:>8.4f} {100 * (accuracy[name] - base_acc):>+6.2f} "
                f"{size_mb(files[name]):>8.2f}{cells}"
            )
    print(
        "\nfile MB: eager = model.safetensors; int8 eager saves the float weights + a flag and re-quantizes on load "
        "(exactly the same int8 weights), so its file is the float one."
    )
    print(f"int8 eager vs fp32 eager: argmax agreement {agreement:.4f} on {len(test_ids):,} texts")
    target_size = 32 if 32 in args.batch_sizes else args.batch_sizes[0]
    for threads, by_size in speed.items():
        for name in ("int8 eager", "onnxruntime int8"):
            ratio = by_size[target_size][name]["ratio_to_fp32"]
            change = 100 * (accuracy[name] - base_acc)
            ok = ratio >= TARGET_SPEEDUP and change >= -TARGET_LOSS_POINTS
            print(
                f"target (threads={threads}, bs={target_size}) {name}: {ratio:.2f}x fp32 (>= {TARGET_SPEEDUP}x), "
                f"accuracy change {change:+.2f} pts (>= -{TARGET_LOSS_POINTS}) -> {'met' if ok else 'NOT met'}"
            )
    print(
        f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}; total {time.perf_counter() - wall:.0f} s"
    )

    if args.json:
        result = {
            "data": str(args.data),
            "train_rows": len(train_ids),
            "test_rows": len(test_ids),
            "epochs": args.epochs,
            "train_seconds": train_seconds,
            "model": model.config.to_dict(),
            "accuracy": accuracy,
            "int8_argmax_agreement": agreement,
            "file_mb": {name: size_mb(path) for name, path in files.items()},
            "tokenize_collate_texts_per_s": tokenize_rate,
            "repeats": repeats,
            "throughput": {str(t): {str(s): v for s, v in by.items()} for t, by in speed.items()},
            "environment": {
                "torch": torch.__version__,
                "onnxruntime": __import__("onnxruntime").__version__,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            "quick": args.quick,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
        logger.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
