"""Benchmark: peak memory of training from a stream of shards, 1x vs 10x the data (issue 10).

Each scale ``k`` writes ``k`` CSV shards, each a copy of SST-2's training set (67,349 sentences, header
``label,text``), and trains in a fresh subprocess, so that its peak RSS belongs to that scale alone:

1. ``load_dataset("csv", data_files=shards, streaming=True)``: an ``IterableDataset``, never materialised;
2. the vocabulary from one streamed pass (``RNNTokenizer.train_from_dataset``, counting in bounded memory);
3. ``RNNTrainer`` for one pass over the stream (``max_steps`` = rows / batch): tokenization in a lazy
   ``map``, ``shuffle(buffer_size=...)`` across shards, then ``bucket_stream`` (length bucketing inside a
   shuffle buffer) and ``PackedSequenceCollator``.

Reported per scale: rows, optimizer steps, wall time, RSS right after the imports, the peak RSS of the
whole run (``getrusage`` ``ru_maxrss``), in MiB, and the growth of the peak above the post-import RSS. The verdict
compares the peak RSS of the largest scale with the smallest (target: ratio <= 1.2); the growth column
shows the same comparison without the ~0.5 GB that importing torch/transformers/datasets costs.

    python benchmarks/streaming.py [--scales 1 10] [--batch-size 256] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2" / "sst2_train.csv"


def rss_mb() -> float:
    """Current resident set size of this process, in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    """One scale, in its own process: vocab from the stream, then one pass of RNNTrainer over it."""
    started = time.perf_counter()
    import torch
    from datasets import load_dataset
    from transformers import TrainerCallback, TrainingArguments

    from rnn_textclf import (
        PackedSequenceCollator,
        RNNClassifier,
        RNNClassifierConfig,
        RNNTokenizer,
        RNNTrainer,
        bucket_stream,
    )

    torch.set_num_threads(1)
    after_imports = rss_mb()
    shards = sorted(str(p) for p in Path(args.shard_dir).glob("*.csv"))
    stream = load_dataset("csv", data_files=shards, split="train", streaming=True)
    tokenizer = RNNTokenizer.train_from_dataset(stream, text_column="text", min_freq=2)
    after_vocab = rss_mb()
    vocab_seconds = time.perf_counter() - started

    tokens = stream.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length, return_length=True),
        batched=True,
        remove_columns=["text"],
    )
    train = bucket_stream(
        tokens.shuffle(seed=0, buffer_size=args.shuffle_buffer),
        batch_size=args.batch_size,
        buffer_size=args.buffer_size,
        seed=0,
    )
    torch.manual_seed(0)
    model = RNNClassifier(
        RNNClassifierConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            num_labels=2,
            embedding_dim=32,
            hidden_size=32,
            rnn_type="gru",
            bidirectional=False,
            pooling="max",
        )
    )
    collator = PackedSequenceCollator(tokenizer)
    steps = args.rows // args.batch_size
    trace: list[tuple[int, float]] = []

    class RSSTrace(TrainerCallback):
        """RSS at every tenth of the run: a leak climbs steadily, a one-off spike does not."""

        def on_step_end(self, _args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step % max(1, steps // 10) == 0:
                trace.append((state.global_step, round(rss_mb(), 1)))

    with tempfile.TemporaryDirectory() as work:
        trainer = RNNTrainer(
            model=model,
            args=TrainingArguments(
                work,
                per_device_train_batch_size=args.batch_size,
                learning_rate=3e-3,
                max_steps=steps,
                report_to="none",
                disable_tqdm=True,
                logging_strategy="no",
                save_strategy="no",
                use_cpu=True,
                seed=0,
            ),
            train_dataset=train,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[RSSTrace()],
        )
        result = trainer.train()
    print(
        json.dumps(
            {
                "shards": len(shards),
                "rows": args.rows,
                "steps": trainer.state.global_step,
                "vocab_size": len(tokenizer),
                "train_loss": result.training_loss,
                "padding_fraction": collator.padding_fraction,
                "seconds": time.perf_counter() - started,
                "vocab_seconds": vocab_seconds,
                "rss_after_imports_mb": after_imports,
                "rss_after_vocab_mb": after_vocab,
                "peak_rss_mb": peak_rss_mb(),
                "rss_trace_mb": trace,
            }
        )
    )


def count_rows(path: Path) -> int:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def run_scale(scale: int, source: Path, rows_per_shard: int, args: argparse.Namespace, root: Path) -> dict:
    shard_dir = root / f"x{scale}"
    shard_dir.mkdir()
    for i in range(scale):
        shutil.copyfile(source, shard_dir / f"part-{i:03d}.csv")
    command = [
        sys.executable,
        __file__,
        "--child",
        "--shard-dir",
        str(shard_dir),
        "--rows",
        str(rows_per_shard * scale),
        "--batch-size",
        str(args.batch_size),
        "--buffer-size",
        str(args.buffer_size),
        "--shuffle-buffer",
        str(args.shuffle_buffer),
        "--max-length",
        str(args.max_length),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"scale {scale} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["scale"] = scale
    shutil.rmtree(shard_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="CSV with header label,text")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="shard counts (copies)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--buffer-size", type=int, default=25600, help="bucket_stream buffer (rows)")
    parser.add_argument("--shuffle-buffer", type=int, default=10000, help="IterableDataset.shuffle buffer")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shard-dir", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if not args.source.is_file():
        parser.error(f"--source {str(args.source)!r} does not exist; pass an SST-2 style CSV (label,text).")
    if any(s < 1 for s in args.scales):
        parser.error(f"--scales must be positive shard counts, got {args.scales}.")

    rows_per_shard = count_rows(args.source)
    results = []
    with tempfile.TemporaryDirectory(prefix="rnn-textclf-streaming-") as root:
        for scale in args.scales:
            print(f"scale {scale}x: {scale} shard(s), {rows_per_shard * scale:,} rows ...", file=sys.stderr)
            results.append(run_scale(scale, args.source, rows_per_shard, args, Path(root)))

    header = [
        "scale",
        "shards",
        "rows",
        "steps",
        "time s",
        "rows/s",
        "RSS import MiB",
        "peak RSS MiB",
        "growth MiB",
    ]
    print(" | ".join(f"{h:>14}" for h in header))
    print("-+-".join("-" * 14 for _ in header))
    for r in results:
        growth = r["peak_rss_mb"] - r["rss_after_imports_mb"]
        cells = [
            f"{r['scale']}x",
            r["shards"],
            f"{r['rows']:,}",
            r["steps"],
            f"{r['seconds']:.1f}",
            f"{r['rows'] / r['seconds']:,.0f}",
            f"{r['rss_after_imports_mb']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{growth:.0f}",
        ]
        print(" | ".join(f"{c!s:>14}" for c in cells))
    small, large = results[0], results[-1]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    growth_small = small["peak_rss_mb"] - small["rss_after_imports_mb"]
    growth_large = large["peak_rss_mb"] - large["rss_after_imports_mb"]
    growth_ratio = growth_large / growth_small if growth_small > 0 else math.nan
    verdict = "meets" if ratio <= 1.2 else "misses"
    for r in results:
        trace = ", ".join(f"{step}: {mb:.0f}" for step, mb in r["rss_trace_mb"])
        print(f"RSS (MiB) during training, {r['scale']}x, by step: {trace}")
    print(
        f"\npeak RSS {large['scale']}x / {small['scale']}x = {ratio:.3f} ({verdict} the target <= 1.2); "
        f"growth above the imports {growth_large:.0f} / {growth_small:.0f} MiB = {growth_ratio:.3f}"
    )
    if args.json:
        report = {
            "results": results,
            "peak_rss_ratio": ratio,
            "growth_ratio": growth_ratio,
            "target": 1.2,
            "settings": {
                k: getattr(args, k) for k in ("batch_size", "buffer_size", "shuffle_buffer", "max_length")
            },
            "source": str(args.source),
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
            },
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
