"""``rnn-textclf`` in a subprocess, as a user runs it: the one runner the tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    timeout: int = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``python -m rnn_textclf.cli ARGS`` in ``cwd``: offline, one thread, no tokenizers fork warning.

    ``stdin`` is the text fed to the command; without it stdin is closed (nothing may wait for input).
    """
    if env is None:
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(
        [sys.executable, "-m", "rnn_textclf.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **feed,
    )
