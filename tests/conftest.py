"""Shared fixtures."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Tiny models gain nothing from intra-op threads, and OpenMP threads that spin-wait against other
# processes on a 2-core machine made a Trainer step 25x slower: one thread, here and in subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

torch.set_num_threads(1)

MINIHUB = Path(__file__).resolve().parents[1].parent / "shared" / "hub" / "minihub.py"


@pytest.fixture(scope="session")
def minihub() -> Iterator[str]:
    """URL of a Hub-compatible server on loopback (../shared/hub/minihub.py), for the session.

    Clients must set HF_ENDPOINT to it (and HF_HUB_DISABLE_XET=1, a fresh HF_HOME) before
    huggingface_hub is imported, i.e. in a subprocess. State lives in memory: use unique repo names.
    """
    if not MINIHUB.is_file():
        raise FileNotFoundError(
            f"the local Hub server {MINIHUB} is missing: the tests need ../shared beside the repo"
        )
    proc = subprocess.Popen(
        [sys.executable, str(MINIHUB), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"minihub did not start (first line: {line!r})")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


# CI sets CI=true: there a missing prerequisite fails the run, so a broken checkout cannot go green.
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def missing(reason: str) -> None:
    """Skips the test for a missing prerequisite locally; fails it in CI (``CI=true``)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the run instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data sets in ../shared/data (skips where absent; fails under ``CI=true``)."""
    if not SHARED_DATA.is_dir():
        missing(f"the shared data folder {SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def export_extra() -> None:
    """Needs the `export` extra (onnx, onnxruntime; the `test` extra has them): skips or fails like shared_data."""
    for module in ("onnx", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing(f"{module} (the `export` extra) is not installed")


@pytest.fixture(autouse=True)
def _process_state_restored() -> Iterator[None]:
    """Puts back the process-wide state a test may change by running the CLI in this process.

    ``rnn_textclf.cli.main`` configures logging (a root handler on the stderr of the moment, which pytest
    closes after the test), library verbosity (which sets ``TrainingArguments.disable_tqdm`` and so the
    Trainer's callbacks), progress bars and torch threads; without this, a later test logs into a closed
    capture or sees another Trainer.
    """
    import datasets
    import transformers

    root, package = logging.getLogger(), logging.getLogger("rnn_textclf")
    saved = (root.handlers[:], root.level, package.level, transformers.logging.get_verbosity())
    saved_datasets = (datasets.logging.get_verbosity(), datasets.is_progress_bar_enabled())
    bars = transformers.utils.logging.is_progress_bar_enabled()
    hub = logging.getLogger("huggingface_hub")
    saved_hub = (hub.level, hub.propagate)
    threads = torch.get_num_threads()
    yield
    hub.setLevel(saved_hub[0])
    hub.propagate = saved_hub[1]
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    package.setLevel(saved[2])
    transformers.logging.set_verbosity(saved[3])
    datasets.logging.set_verbosity(saved_datasets[0])
    if saved_datasets[1]:
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()
    if bars:
        transformers.utils.logging.enable_progress_bar()
    else:
        transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
