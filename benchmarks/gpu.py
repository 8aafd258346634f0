"""GPU check and benchmark (issue 10): bf16 autocast + cuDNN packed RNNs on AG News, and no hidden syncs.

One short script for a CUDA machine (about a minute on a recent GPU). On a machine without CUDA it says so
and exits with status 0, measuring nothing.

What it does, on the AG News texts (default: ``../shared/data/ag_news_csv/test.csv``, 7,600 rows; the text
is title + " " + description), with a bidirectional LSTM (embedding 100, hidden 128, max pooling):

1. **Throughput**: training steps (forward, backward, AdamW) on batches from ``PackedSequenceCollator``
   moved by ``PackedBatch.to(device, non_blocking=True)`` (``lengths`` stay on the CPU), timed after a
   warm-up, in samples/s: CPU fp32 (all cores) vs GPU fp32 vs GPU bf16 autocast, at each ``--batch-size``.
   Also ``RNNTrainer(..., bf16=True)`` for ``--trainer-steps`` steps (its own ``train_samples_per_second``),
   then distillation with bf16: that model as the teacher (``add_teacher_logits`` on the GPU), a fresh
   student trained on its logits alone for as many steps, and how often the two agree.
2. **cuDNN**: the profiler shows whether ``_cudnn_rnn`` ran for the packed LSTM, and in which dtype the
   recurrent outputs came back under autocast.
3. **No device-to-host synchronisation in the forward pass**: ``torch.cuda.set_sync_debug_mode("error")``
   around (a) ``model(**batch)`` on a batch moved by ``PackedBatch.to`` and (b) ``RNNTrainer.compute_loss``
   on inputs from ``RNNTrainer._prepare_inputs`` (the copy to the GPU happens before the checked region:
   Trainer copies with blocking ``.to()``), and (c) the same with the distillation loss (a batch with
   ``teacher_logits`` and unlabelled rows). All under bf16 autocast, in training mode. Any synchronising
   call raises and is reported. The rest of a training step (backward and the optimizer) is checked the
   same way and reported for information.

4. **Left padding refused on the device**: a left-padded batch (mask, no lengths) on the GPU raises the
   same error as on the CPU (the model would otherwise read it as right padding).

Exit status: 0 when the forward checks pass (or there is no CUDA), 1 when one fails.

    python benchmarks/gpu.py [--data ../shared/data/ag_news_csv/test.csv] [--steps 200] [--json gpu.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ag_news_csv" / "test.csv"


def load_ag_news(path: Path) -> tuple[list[str], list[int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [f"{title} {description}" for _, title, description in rows], [int(c) - 1 for c, _, _ in rows]


def make_model(vocab_size: int, pad_id: int) -> Any:
    from rnn_textclf import RNNClassifier, RNNClassifierConfig

    torch.manual_seed(0)
    return RNNClassifier(
        RNNClassifierConfig(
            vocab_size=vocab_size,
            pad_token_id=pad_id,
            num_labels=4,
            embedding_dim=100,
            hidden_size=128,
            rnn_type="lstm",
            bidirectional=True,
            pooling="max",
        )
    )


def batches(rows: list[dict[str, Any]], collator: Any, batch_size: int) -> list[Any]:
    """PackedBatch objects (CPU, pinned when CUDA is there) in a fixed shuffled order."""
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
    out = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        batch = collator([rows[i] for i in order[start : start + batch_size]])
        out.append(batch.pin_memory() if torch.cuda.is_available() else batch)
    return out


def train_rate(
    model: Any, data: list[Any], device: torch.device, steps: int, warmup: int, bf16: bool
) -> dict[str, Any]:
    """Samples/s of full training steps on `device`, after `warmup` steps."""
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    samples = 0
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            samples = 0
        batch = data[step % len(data)]
        batch = batch.to(device, non_blocking=True) if device.type != "cpu" else batch
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        samples += batch["input_ids"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "samples_per_s": samples / seconds,
        "steps": steps,
        "seconds": seconds,
        "last_loss": float(loss.detach()),
    }


def bf16_arguments(output_dir: str, cuda: bool, max_steps: int, **extra: Any) -> Any:
    """``RNNTrainingArguments`` of this script's runs: bf16, batch 64, no saving, logging or progress bars."""
    from rnn_textclf import RNNTrainingArguments

    return RNNTrainingArguments(
        output_dir,
        bf16=True,
        use_cpu=not cuda,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_strategy="no",
        max_steps=max_steps,
        per_device_train_batch_size=64,
        **extra,
    )


def sync_check(name: str, fn: Any) -> dict[str, Any]:
    """Runs fn() with CUDA sync debug mode 'error'; a synchronising call raises inside."""
    if not torch.cuda.is_available():  # --cpu-dry-run
        fn()
        return {"check": name, "passed": True, "error": "not checked: no CUDA (--cpu-dry-run)"}
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        result = {"check": name, "passed": True, "error": None}
    except RuntimeError as err:
        result = {"check": name, "passed": False, "error": str(err).splitlines()[0]}
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="AG News CSV (class, title, description)"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=200, help="timed GPU steps per variant")
    parser.add_argument("--cpu-steps", type=int, default=20, help="timed CPU steps per batch size")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--trainer-steps", type=int, default=200, help="RNNTrainer(bf16=True) steps (0: skip)"
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="run every step on the CPU (no sync checks), to test the script",
    )
    args = parser.parse_args(argv)

    report: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if not torch.cuda.is_available() and not args.cpu_dry_run:
        reason = (
            f"CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "benchmarks/gpu.py needs a CUDA GPU. Nothing was measured."
        )
        print(reason)
        if args.json:
            Path(args.json).write_text(
                json.dumps({**report, "cuda": False, "reason": reason}, indent=2) + "\n"
            )
        return 0
    if not args.data.is_file():
        parser.error(
            f"--data {str(args.data)!r} does not exist; pass the AG News CSV (class, title, description)."
        )

    from rnn_textclf import PackedSequenceCollator, RNNTokenizer

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = False
    report.update(
        cuda=cuda,
        gpu=torch.cuda.get_device_name(0) if cuda else "none (--cpu-dry-run)",
        cudnn=torch.backends.cudnn.version() if cuda else None,
        bf16_supported=torch.cuda.is_bf16_supported() if cuda else None,
    )
    texts, labels = load_ag_news(args.data)
    tokenizer = RNNTokenizer.train_from_iterator(texts, min_freq=2)
    encoded = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    rows = [{"input_ids": ids, "label": label} for ids, label in zip(encoded, labels, strict=True)]
    collator = PackedSequenceCollator(tokenizer)
    report["rows"] = len(rows)
    print(f"{report['gpu']}, cuDNN {report['cudnn']}, torch {torch.__version__}; {len(rows):,} AG News texts")

    # 1. Throughput: CPU fp32 vs GPU fp32 vs GPU bf16 autocast.
    throughput = []
    for batch_size in args.batch_size:
        data = batches(rows, collator, batch_size)
        cpu = train_rate(
            make_model(len(tokenizer), tokenizer.pad_token_id),
            data,
            torch.device("cpu"),
            args.cpu_steps,
            2,
            False,
        )
        for precision in ("fp32", "bf16"):
            gpu = train_rate(
                make_model(len(tokenizer), tokenizer.pad_token_id),
                data,
                device,
                args.steps,
                args.warmup,
                precision == "bf16",
            )
            throughput.append(
                {
                    "batch_size": batch_size,
                    "precision": precision,
                    "gpu_samples_per_s": gpu["samples_per_s"],
                    "cpu_fp32_samples_per_s": cpu["samples_per_s"],
                    "speedup_vs_cpu": gpu["samples_per_s"] / cpu["samples_per_s"],
                    "last_loss": gpu["last_loss"],
                }
            )
    report["throughput"] = throughput
    report["cpu_threads"] = torch.get_num_threads()

    # 2. cuDNN for the packed LSTM, and the dtype of its outputs under autocast.
    model = make_model(len(tokenizer), tokenizer.pad_token_id).to(device).train()
    batch = collator(rows[:64]).to(device, non_blocking=cuda)
    seen: dict[str, Any] = {}
    hook = model.rnn.register_forward_hook(lambda m, i, o: seen.update(rnn_out=o[0].data.dtype))
    with (
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof,
        torch.autocast(device.type, dtype=torch.bfloat16),
    ):
        model(**batch).loss.backward()
    hook.remove()
    ops = {event.key for event in prof.key_averages()}
    report["cudnn_rnn_used"] = any("cudnn_rnn" in op for op in ops)
    report["rnn_output_dtype_under_autocast"] = str(seen.get("rnn_out"))

    # 3. No device-to-host synchronisation in the forward pass.
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cpu_batch = collator(rows[64:128])
    with torch.autocast(
        device.type, dtype=torch.bfloat16
    ):  # warm-up: cuDNN plans, allocator, optimizer state
        model(**cpu_batch.to(device)).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)

    checks = []
    moved = collator(rows[128:192])
    moved = (moved.pin_memory() if cuda else moved).to(device, non_blocking=True)
    assert moved["lengths"].device.type == "cpu" and moved["input_ids"].device.type == device.type

    def forward_packed_batch() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            seen["loss"] = model(**moved).loss

    checks.append(sync_check("forward, PackedBatch.to(cuda)", forward_packed_batch))

    import tempfile

    from rnn_textclf import RNNTrainer

    work = tempfile.mkdtemp(prefix="rnn-textclf-gpu-")
    trainer = RNNTrainer(
        model=model,
        args=bf16_arguments(work, cuda, max(args.trainer_steps, 1)),
        processing_class=tokenizer,
    )
    inputs = trainer._prepare_inputs(
        collator(rows[192:256])
    )  # blocking copies happen here, outside the check
    assert inputs["lengths"].device.type == "cpu"

    def trainer_compute_loss() -> None:
        with trainer.compute_loss_context_manager(), torch.autocast(device.type, dtype=torch.bfloat16):
            seen["trainer_loss"] = trainer.compute_loss(trainer.model, inputs)

    checks.append(sync_check("forward, RNNTrainer._prepare_inputs + compute_loss", trainer_compute_loss))

    # The same with the distillation loss: a teacher_logits column, half the rows unlabelled (-100).
    distilling = RNNTrainer(
        model=model,
        args=bf16_arguments(work, cuda, 1, distillation_alpha=0.5, label_smoothing_factor=0.1),
        processing_class=tokenizer,
    )
    teacher_rows = [
        {**row, "label": row["label"] if i % 2 else -100, "teacher_logits": [0.5, -0.5, 1.0, 0.0]}
        for i, row in enumerate(rows[192:256])
    ]
    distill_inputs = distilling._prepare_inputs(collator(teacher_rows))

    def distillation_compute_loss() -> None:
        with distilling.compute_loss_context_manager(), torch.autocast(device.type, dtype=torch.bfloat16):
            seen["distillation_loss"] = distilling.compute_loss(distilling.model, distill_inputs)

    checks.append(
        sync_check("forward, RNNTrainer.compute_loss with teacher_logits", distillation_compute_loss)
    )

    def backward_and_step() -> None:
        seen["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    rest = sync_check("backward + AdamW step (information)", backward_and_step)
    report["sync_checks"] = checks

    # A left-padded batch on the device, with a mask and no lengths (what a pipeline on the GPU passes with
    # a padding_side="left" tokenizer), must be refused as on the CPU, not read as right padding.
    left = tokenizer(
        [texts[0], texts[1] + " " + texts[2]], padding=True, padding_side="left", return_tensors="pt"
    )
    try:
        with torch.no_grad():
            model(input_ids=left["input_ids"].to(device), attention_mask=left["attention_mask"].to(device))
        refused = {"passed": False, "error": "a left-padded batch was read without an error"}
    except ValueError as err:
        refused = {"passed": "padding_side must be 'right'" in str(err), "error": str(err).splitlines()[0]}
    report["left_padding_refused"] = refused
    report["sync_backward_and_optimizer"] = rest

    # RNNTrainer end to end with bf16.
    if args.trainer_steps > 0:
        from datasets import Dataset

        ds = Dataset.from_dict({"input_ids": encoded, "label": labels})
        trainer = RNNTrainer(
            model=make_model(len(tokenizer), tokenizer.pad_token_id),
            # lr 3e-3: a teacher worth distilling from, below
            args=bf16_arguments(
                work, cuda, args.trainer_steps, learning_rate=3e-3, dataloader_pin_memory=True, seed=0
            ),
            train_dataset=ds,
            processing_class=tokenizer,
        )
        out = trainer.train()
        report["trainer_bf16"] = {
            "steps": args.trainer_steps,
            "batch_size": 64,
            "train_samples_per_second": out.metrics["train_samples_per_second"],
            "train_loss": out.training_loss,
        }

        # Distillation with bf16: the model just trained is the teacher; add_teacher_logits runs it on the
        # GPU over the raw texts, then a fresh student learns from its logits alone (alpha 1.0).
        from rnn_textclf import add_teacher_logits

        teacher = trainer.model.eval()
        texts_ds = Dataset.from_dict({"text": texts, "label": labels})
        started = time.perf_counter()
        transfer = add_teacher_logits(texts_ds, (teacher, tokenizer), batch_size=256, max_length=128)
        teacher_seconds = time.perf_counter() - started
        transfer = transfer.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True
        ).remove_columns(["text", "label"])
        student_trainer = RNNTrainer(
            model=make_model(len(tokenizer), tokenizer.pad_token_id),
            args=bf16_arguments(
                work, cuda, args.trainer_steps, learning_rate=3e-3, seed=0, distillation_alpha=1.0
            ),
            train_dataset=transfer,
            processing_class=tokenizer,
        )
        distilled = student_trainer.train()
        scored = transfer.select(range(min(2000, len(transfer))))
        student_pred = student_trainer.predict(scored.remove_columns("teacher_logits")).predictions.argmax(-1)
        teacher_pred = torch.tensor(scored["teacher_logits"]).argmax(-1).numpy()
        report["distillation_bf16"] = {
            "teacher_logits_texts_per_second": len(texts) / teacher_seconds,
            "teacher_device": str(next(teacher.parameters()).device),
            "steps": args.trainer_steps,
            "train_samples_per_second": distilled.metrics["train_samples_per_second"],
            "train_loss": distilled.training_loss,
            "student_teacher_agreement": float((student_pred == teacher_pred).mean()),
            "teacher_majority_share": float(
                torch.bincount(torch.tensor(teacher_pred)).max() / len(teacher_pred)
            ),
        }

    print(f"\n{'batch':>6} {'precision':>9} {'GPU samples/s':>14} {'CPU fp32 samples/s':>19} {'x CPU':>7}")
    for row in throughput:
        print(
            f"{row['batch_size']:>6} {row['precision']:>9} {row['gpu_samples_per_s']:>14,.0f} "
            f"{row['cpu_fp32_samples_per_s']:>19,.0f} {row['speedup_vs_cpu']:>7.1f}"
        )
    if "trainer_bf16" in report:
        t = report["trainer_bf16"]
        print(
            f"RNNTrainer bf16, batch 64: {t['train_samples_per_second']:,.0f} samples/s over {t['steps']} steps"
        )
    if "distillation_bf16" in report:
        d = report["distillation_bf16"]
        print(
            f"Distillation bf16: teacher logits {d['teacher_logits_texts_per_second']:,.0f} texts/s on "
            f"{d['teacher_device']}; student {d['train_samples_per_second']:,.0f} samples/s, loss "
            f"{d['train_loss']:.3f}, agrees with the teacher on {d['student_teacher_agreement']:.1%} of 2,000 "
            f"texts (teacher's majority class: {d['teacher_majority_share']:.1%})"
        )
    print(
        f"cuDNN RNN kernel used: {report['cudnn_rnn_used']}; LSTM outputs under bf16 autocast: "
        f"{report['rnn_output_dtype_under_autocast']}"
    )
    for check in [*checks, rest]:
        status = (check["error"] or "no sync") if check["passed"] else f"SYNC: {check['error']}"
        print(f"sync check, {check['check']}: {status}")
    print(f"left-padded batch on {device.type} refused: {refused['passed']} ({refused['error']})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if all(c["passed"] for c in checks) and refused["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
