"""``rnn-textclf`` in a subprocess, as a user runs it: the one runner the tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _env() -> dict[str, str]:
    return dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


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
        env = _env()
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


# Runs each case through `main` with its own stdout and stderr, in one process (see `run_cli_cases`).
_CASES_DRIVER = """
import contextlib, io, json, sys, traceback
from rnn_textclf.cli import main
results = []
for args in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit:  # argparse's own errors
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def run_cli_cases(
    cases: list[list[str]], *, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess]:
    """Each list of arguments in ``cases`` through ``rnn-textclf``'s ``main``, one after another in one fresh
    Python process in ``cwd`` (with `run_cli`'s environment and stdin closed): for short commands (bad input,
    predictions from one model) where a process each would mostly pay the ~5 s import of torch and
    transformers. Each case gets its own stdout and stderr (the CLI's logging set-up binds to them).
    """
    proc = subprocess.run(
        [sys.executable, "-c", _CASES_DRIVER],
        cwd=cwd,
        env=_env() if env is None else env,
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the cases' driver failed: {proc.stderr[-3000:]}")
    return [
        subprocess.CompletedProcess(args, code, stdout, stderr)
        for args, (code, stdout, stderr) in zip(cases, json.loads(proc.stdout.splitlines()[-1]), strict=True)
    ]
