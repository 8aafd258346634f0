"""Data-parallel training (DDP, gloo on CPU) under torchrun and accelerate launch, compared with one process.

Tolerance of the comparison: with DDP over 2 processes at 16 rows each, the optimizer sees the same
32-row batches in the same order as one process at 32 rows (accelerate shards the seeded permutation
batch by batch), and averaging the two ranks' mean gradients gives the 32-row mean gradient. Dropout is
off, so the runs differ only in floating-point summation order: measured, the weights differ by about
1e-5 and the evaluation loss by about 1e-4. The test allows accuracy within 0.01 (5 of 500 texts), the
evaluation loss within 1% and the weights within 1e-3.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_ddp.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", MASTER_ADDR="127.0.0.1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, cwd=cwd, env=launch_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command[:6]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def ag_subset(shared_data, tmp_path_factory) -> Path:
    """1,024 training and 500 evaluation rows of the AG News test CSV, in the original format."""
    folder = tmp_path_factory.mktemp("ag")
    with (shared_data / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for name, part in (("train.csv", rows[:1024]), ("eval.csv", rows[1024:1524])):
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(part)
    return folder


def load_example():
    spec = importlib.util.spec_from_file_location("train_ddp_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torchrun_ddp_matches_one_process(ag_subset, tmp_path):
    common = ["--train-file", str(ag_subset / "train.csv"), "--eval-file", str(ag_subset / "eval.csv")]
    common += ["--epochs", "2", "--seed", "0"]

    # One process, 32 rows per step (in this process: the script's main()).
    single = load_example().main(
        [
            *common,
            "--batch-size",
            "32",
            "--output-dir",
            str(tmp_path / "single"),
            "--hash-dir",
            str(tmp_path / "h1"),
        ]
    )

    # Two processes, 16 rows each per step: the same 32 rows per optimizer step.
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(SCRIPT),
            *common,
            "--batch-size",
            "16",
            "--output-dir",
            str(tmp_path / "ddp"),
            "--hash-dir",
            str(tmp_path / "h2"),
            "--metrics-json",
            str(tmp_path / "ddp.json"),
        ],
        cwd=tmp_path,
    )
    ranks = [json.loads((tmp_path / "h2" / f"rank{r}.json").read_text()) for r in (0, 1)]
    one = json.loads((tmp_path / "h1" / "rank0.json").read_text())
    assert [r["world_size"] for r in ranks] == [2, 2] and one["world_size"] == 1
    # Both ranks hold identical weights after training, and built the same vocabulary as one process.
    assert ranks[0]["state_dict_sha256"] == ranks[1]["state_dict_sha256"]
    assert ranks[0]["vocab_sha256"] == ranks[1]["vocab_sha256"] == one["vocab_sha256"]
    assert ranks[0]["global_step"] == one["global_step"] == 64  # 1,024 rows / 32 per step x 2 epochs

    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert ddp["world_size"] == 2
    assert single["eval_accuracy"] > 0.45, single  # it learned (4 classes, chance 0.25)
    assert abs(ddp["eval_accuracy"] - single["eval_accuracy"]) <= 0.01, (ddp, single)
    assert abs(ddp["eval_loss"] - single["eval_loss"]) <= 0.01 * single["eval_loss"], (ddp, single)
    a, b = (
        load_file(tmp_path / "single" / "model.safetensors"),
        load_file(tmp_path / "ddp" / "model.safetensors"),
    )
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-3
    assert not torch.equal(a["classifier.weight"], torch.zeros_like(a["classifier.weight"]))


def test_cli_train_under_accelerate_launch(ag_subset, tmp_path):
    """`accelerate launch` (its --multi_gpu launcher also runs CPU processes, over gloo) + `rnn-textclf train`."""
    out = tmp_path / "model"
    proc = run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(free_port()),
            "-m",
            "rnn_textclf.cli",
            "train",
            "--train-file",
            str(ag_subset / "train.csv"),
            "--test-file",
            str(ag_subset / "eval.csv"),
            "--csv-column-names",
            "label,title,description",
            "--text-column",
            "title",
            "--text-column",
            "description",
            "--rnn-type",
            "gru",
            "--hidden-size",
            "32",
            "--embedding-dim",
            "32",
            "--min-freq",
            "2",
            "--lr",
            "0.01",  # (0.005: 0.366-0.558 on --seed 0-8 and 42, 3 of 10 under 0.4; 0.01: 0.54-0.64 on 3, 4, 7, 8, 42)
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--output-dir",
            str(out),
        ],
        cwd=tmp_path,
    )
    # Rank 0 alone prints the report and writes the folder; no working or staging folder is left over.
    assert proc.stdout.count("rnn-textclf: trained in") == 1, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2
    assert metrics["train_rows"] + metrics["validation_rows"] == 1024
    assert metrics["test"]["per_class"]["1"]["support"] + metrics["test"]["per_class"]["4"]["support"] > 0
    assert sum(row["support"] for row in metrics["test"]["per_class"].values()) == 500  # no duplicates
    assert metrics["test"]["accuracy"] > 0.4, metrics["test"]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    from rnn_textclf.cli._inference import _load_model_and_tokenizer, predict_texts

    model, tokenizer = _load_model_and_tokenizer(str(out))
    [row] = predict_texts(model, tokenizer, ["Stocks fell as oil prices rose"])
    assert row["label"] in {"1", "2", "3", "4"}


@pytest.mark.slow
def test_torchrun_ddp_on_a_stream(ag_subset, tmp_path):
    """DDP on a `datasets` stream: every rank reads it and keeps its share of each length-grouped block."""
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(SCRIPT),
            "--train-file",
            str(ag_subset / "train.csv"),
            "--eval-file",
            str(ag_subset / "eval.csv"),
            "--stream",
            "--max-steps",
            "64",
            "--batch-size",
            "16",
            "--output-dir",
            str(tmp_path / "ddp"),
            "--hash-dir",
            str(tmp_path / "h"),
            "--metrics-json",
            str(tmp_path / "ddp.json"),
        ],
        cwd=tmp_path,
    )
    ranks = [json.loads((tmp_path / "h" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["state_dict_sha256"] == ranks[1]["state_dict_sha256"]
    assert ranks[0]["global_step"] == 64
    # The vocabulary counted over the stream is the one counted over the texts in memory.
    example = load_example()
    with (ag_subset / "train.csv").open(newline="", encoding="utf-8") as handle:
        texts = [f"{title} {description}" for _, title, description in csv.reader(handle)]
    in_memory = example.RNNTokenizer.train_from_iterator(iter(texts), min_freq=2)
    assert ranks[0]["vocab_sha256"] == ranks[1]["vocab_sha256"] == example.vocab_sha256(in_memory)
    metrics = json.loads((tmp_path / "ddp.json").read_text())
    assert metrics["eval_accuracy"] > 0.4, metrics


def test_rnn_trainer_hands_lengths_past_ddp_input_moving(tmp_path):
    """With one GPU per process, DDP moves every tensor argument to its GPU; RNNTrainer passes lengths as
    NumPy, which DDP leaves on the CPU, so the model never copies them back."""
    from types import SimpleNamespace

    import numpy as np
    from torch.distributed.utils import _to_kwargs
    from transformers import TrainingArguments

    from rnn_textclf import (
        PackedSequenceCollator,
        RNNClassifier,
        RNNClassifierConfig,
        RNNTokenizer,
        RNNTrainer,
    )

    tokenizer = RNNTokenizer.train_from_iterator(["a b c", "b c d e", "e f"])
    torch.manual_seed(0)
    model = RNNClassifier(
        RNNClassifierConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=2, hidden_size=8
        )
    ).eval()
    trainer = RNNTrainer(
        model=model,
        args=TrainingArguments(str(tmp_path), use_cpu=True, report_to="none"),
        processing_class=tokenizer,
    )
    collator = PackedSequenceCollator(tokenizer)
    rows = [
        {"input_ids": ids, "label": i % 2}
        for i, ids in enumerate(tokenizer(["a b c", "e", "b c d e f"])["input_ids"])
    ]

    plain = trainer._prepare_inputs(collator(rows))
    assert isinstance(plain["lengths"], torch.Tensor) and plain["lengths"].device.type == "cpu"

    trainer.model_wrapped = SimpleNamespace(
        device_ids=[0]
    )  # as accelerate wraps the model on a multi-GPU machine
    ddp_inputs = trainer._prepare_inputs(collator(rows))
    assert isinstance(ddp_inputs["lengths"], np.ndarray)
    # DDP's input mover (DistributedDataParallel._pre_forward with device_ids) moves the tensors only.
    _, [moved] = _to_kwargs((), dict(ddp_inputs), torch.device("meta"), False)
    assert moved["input_ids"].device.type == "meta" and moved["lengths"] is ddp_inputs["lengths"]
    with torch.no_grad():
        assert torch.equal(model(**ddp_inputs).logits, model(**plain).logits)


EXIT_PAUSE = """
import atexit, socket, sys
import torch.distributed as dist
from transformers import TrainingArguments
from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer
from rnn_textclf.trainer import _EXIT_PAUSE_S

tokenizer = RNNTokenizer.train_from_iterator(["a b c", "b c d"])
config = RNNClassifierConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, hidden_size=4)
def trainer():
    args = TrainingArguments(sys.argv[1], use_cpu=True, report_to="none")
    return RNNTrainer(model=RNNClassifier(config), args=args, processing_class=tokenizer)
counts = [atexit._ncallbacks()]
trainer()
counts.append(atexit._ncallbacks())  # no process group: nothing to wait for
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{port}")
trainer()
counts.append(atexit._ncallbacks())
trainer()  # once per process
counts.append(atexit._ncallbacks())
print("COUNTS", counts[1] - counts[0], counts[2] - counts[1], counts[3] - counts[2], _EXIT_PAUSE_S, flush=True)
dist.destroy_process_group()
"""


def test_trainer_under_a_process_group_pauses_the_exit_once(tmp_path):
    """A rank could die with SIGABRT after its last line (2 of 72 runs of techniques_ddp_worker.py): a gloo
    thread still releasing Trainer's last all-gather waited for the GIL into the interpreter's
    finalization (see trainer._pause_at_exit_for_collectives). RNNTrainer made under a process group
    registers one GIL-free pause at exit; no pause without one. (The race itself shows in the torchrun
    tests: in interleaved torchrun runs of that script, 2 of 30 aborted without the pause, 0 of 30 with.)"""
    script = tmp_path / "exit_pause.py"
    script.write_text(EXIT_PAUSE)
    proc = run([sys.executable, str(script), str(tmp_path / "out")], cwd=tmp_path)
    counts = [line for line in proc.stdout.splitlines() if line.startswith("COUNTS")]
    assert counts == ["COUNTS 0 1 0 0.05"], proc.stdout + proc.stderr[-2000:]


RANK0_TOKENIZER = """
import json
from accelerate import PartialState
from rnn_textclf import RNNTokenizer
from rnn_textclf.cli.train import _rank0_tokenizer
state = PartialState(cpu=True)
# (as if the trainer gave each rank another vocabulary: WordPiece's and Unigram's need not agree)
texts = ["free prize now", "call me now"] if state.is_main_process else ["see you at lunch", "ok lar"]
tok = _rank0_tokenizer(RNNTokenizer.train_from_iterator(texts, model="wordpiece"))
print("VOCAB", json.dumps(sorted(tok.get_vocab().items())), tok("free lunch now")["input_ids"], flush=True)
"""


def test_every_rank_trains_with_rank_0s_tokenizer(tmp_path):
    # `rnn-textclf train` builds the tokenizer on every rank: two ranks with two WordPiece vocabularies
    # trained on other ids, or crashed on embeddings of two sizes. Rank 0's now goes to every rank.
    script = tmp_path / "rank0_tokenizer.py"
    script.write_text(RANK0_TOKENIZER)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(free_port()), str(script),
    ]  # fmt: skip
    proc = run(command, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("VOCAB")]
    assert len(lines) == 2 and lines[0] == lines[1], lines
    assert '"free"' in lines[0] and '"lunch"' not in lines[0]  # rank 0's texts


def torchrun_recipe(ag_subset: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m rnn_textclf.cli train --recipe bilstm-glove` on the AG News subset."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(free_port()), "-m", "rnn_textclf.cli", "train", "--recipe", "bilstm-glove",
        "--train-file", str(ag_subset / "train.csv"), "--test-file", str(ag_subset / "eval.csv"),
        "--csv-column-names", "label,title,description", "--text-column", "title", "--text-column",
        "description", "--hidden-size", "32", "--max-length", "60", "--epochs", "2", "--output-dir", str(out),
        *options,
    ]  # fmt: skip
    return run(command, cwd=out.parent)


@pytest.mark.slow  # ~13 s; the CLI under accelerate launch and examples/train_ddp.py under torchrun stay default
def test_torchrun_trains_a_recipe_on_two_processes(ag_subset, tmp_path):
    """`torchrun --nproc_per_node 2 -m rnn_textclf.cli train --recipe bilstm-glove`: the recipe path is the DDP path."""
    out = tmp_path / "model"
    proc = torchrun_recipe(ag_subset, out, "--quiet")
    assert proc.stdout.count("rnn-textclf: trained in") == 1, proc.stdout  # rank 0 alone reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no checkpoint or staging folder left
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2
    assert metrics["recipe"]["name"] == "bilstm-glove" and metrics["recipe"]["adversarial_eps"] == 1.0
    # 922 training rows, 32 a process a step: 15 steps an epoch on 2 processes (29 on one).
    assert metrics["train_rows"] == 922 and metrics["history"][-1]["step"] == 30
    assert sum(row["support"] for row in metrics["test"]["per_class"].values()) == 500  # no duplicates
    assert metrics["test"]["accuracy"] > 0.5, metrics["test"]  # four balanced classes: chance is 0.25
    config = json.loads((out / "config.json").read_text())
    assert (config["recipe"], config["hidden_size"], config["embedding_dim"]) == ("bilstm-glove", 32, 50)


@pytest.mark.slow
def test_torchrun_pretrains_then_trains_on_two_processes(ag_subset, tmp_path):
    """`--pretrain-epochs` under DDP: the language model's loss leaves the classifier's head unused (DDP must
    be told), and both ranks go on to train the same classifier."""
    out = tmp_path / "model"
    proc = torchrun_recipe(ag_subset, out, "--pretrain-epochs", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("pretraining epoch 2/2") == 1, proc.stderr[-3000:]  # rank 0 alone logs
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["pretraining"]["epochs"] == 2
    assert metrics["test"]["accuracy"] > 0.5, metrics["test"]  # four balanced classes: chance is 0.25
