"""The GPU script runs where no GPU is: sessions with a GPU get one short try, so it must not rot here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news_csv" / "test.csv"


@pytest.mark.slow  # ~1 minute on 2 shared cores
def test_gpu_script_runs_every_step_in_its_cpu_dry_run(tmp_path):
    out = tmp_path / "gpu.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--cpu-dry-run", "--data", str(AG_NEWS),
        "--batch-size", "32", "--steps", "3", "--cpu-steps", "2", "--warmup", "1", "--trainer-steps", "120",
        "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [c["check"] for c in report["sync_checks"]] == [
        "forward, PackedBatch.to(cuda)",
        "forward, RNNTrainer._prepare_inputs + compute_loss",
        "forward, RNNTrainer.compute_loss with teacher_logits",
    ]
    assert all(c["passed"] for c in report["sync_checks"])
    assert report["left_padding_refused"]["passed"], report["left_padding_refused"]
    distilled = report["distillation_bf16"]
    # The student learned the teacher (trained 120 steps), not just its most frequent class.
    assert distilled["student_teacher_agreement"] > distilled["teacher_majority_share"] + 0.2
