"""The output folder of ``train``: staged, then published whole; plots, model card and the final report."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import CLIError


def _check_output_dir(path: Path, overwrite: bool) -> None:
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        # the folder is written beside its place and swapped in whole (--overwrite: the old one removed)
        raise CLIError(
            f"--output-dir {str(path)!r} is the current folder{'' if path.resolve() == here else ' or holds it'}: "
            "train writes a new folder and replaces it whole; name one, e.g. --output-dir model."
        )
    if path.exists() and not path.is_dir():
        raise CLIError(f"--output-dir {str(path)!r} is a file; choose a folder.")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise CLIError(
            f"--output-dir {str(path)!r} exists and is not empty; pass --overwrite to replace it or choose "
            "another --output-dir."
        )


@contextlib.contextmanager
def _shared_staging_dir(state: Any, output_dir: Path) -> Iterator[Path]:
    """The staging folder of the output: made by rank 0 beside ``output_dir``, the same path on every rank.

    Beside ``output_dir`` (shared storage in a multi-node run), so that ``_publish`` is a rename. Rank 0
    removes it if the block fails (after success ``_publish`` has moved it).
    """
    parent = output_dir.absolute().parent
    paths: list[Any] = [None]
    if state.is_main_process:
        # --output-dir runs/model in a folder that does not exist yet: made, as Trainer makes its folders
        parent.mkdir(parents=True, exist_ok=True)
        paths = [tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=parent)]
        # mkdtemp makes it private (0700); published, it is the model folder: the umask's mode, as mkdir
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(paths[0], 0o777 & ~umask)
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(paths)
    try:
        yield Path(paths[0])
    except BaseException:
        if state.is_main_process:
            shutil.rmtree(paths[0], ignore_errors=True)
        raise


def _publish(staging: Path, target: Path) -> None:
    """Moves the finished staging folder to the target, replacing it only at the very end.

    The old target is renamed aside, then the staging folder renamed in, with Ctrl-C and SIGTERM held back
    in between (handled just after): one there left no target at all, the old model in a hidden
    folder and the new one deleted. Should the second rename fail, the old target is put back.
    """
    backup = None
    try:
        with _signals_held():
            if target.exists():
                backup = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(backup)
            try:
                staging.rename(target)
            except BaseException:
                if backup is not None:
                    backup.rename(target)
                    backup = None
                raise
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive during the block are handled when it ends (by the handlers in place
    before it: Ctrl-C's KeyboardInterrupt, the CLI's SIGTERM). Python runs signal handlers in the main
    thread only, which is also the only one that can set them: elsewhere nothing is held."""
    signals = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, signals):
        yield  # (None: a handler set outside Python, which could not be put back)
        return
    held: list[tuple[int, Any]] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: held.append((signum, frame)))
        for signum in signals
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in held[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def _plot_confusion(cm: list[list[int]], names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(cm)
    size = max(3.5, 0.8 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    limit = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > limit else "black",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curve_figure(history: list[dict[str, Any]], metric: str) -> Any:
    """Train and validation loss per epoch, the validation ``metric`` on a second axis, the kept epoch marked.

    Whole-epoch ticks, and the legend below the plot so it hides no line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if train:
        ax.plot(*zip(*train, strict=True), marker="o", label="train loss")
    if evals:
        ax.plot(
            [h["epoch"] for h in evals], [h["eval_loss"] for h in evals], marker="o", label="validation loss"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    key = f"eval_{metric}"
    scored = [h for h in evals if isinstance(h.get(key), (int, float))]
    if scored:
        other = ax.twinx()
        other.plot(
            [h["epoch"] for h in scored],
            [h[key] for h in scored],
            color="green",
            marker="s",
            label=f"validation {metric}",
        )
        other.set_ylabel(metric)
        best = max(scored, key=lambda h: h[key])  # the first best: the checkpoint the Trainer keeps
        ax.axvline(best["epoch"], color="grey", linestyle=":", label=f"kept (best {metric})")
        more_handles, more_labels = other.get_legend_handles_labels()
        handles, labels = ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_title("training curve")
    fig.tight_layout()
    return fig


def _plot_curves(history: list[dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = _curve_figure(history, metric)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_card(
    model: Any,
    folder: Path,
    args: argparse.Namespace,
    report: dict[str, Any],
    split: str,
    coverage: Any,
    *,
    name: str,
) -> None:
    """Writes the card into ``folder`` (the staging folder), titled ``name``: the folder the user asked for."""
    from ..modelcard import model_index, write_model_card

    if args.dataset:
        data = f"`{args.dataset}`" + (f" ({args.dataset_config})" if args.dataset_config else "")
    elif args.train_file:
        data = f"`{Path(args.train_file).name}`"
    else:
        data = "the SMS Spam Collection v.1 (embedded in rnn-textclf), seeded stratified 80/10/10 split"
    info: dict[str, Any] = {
        "training_data": f"{data}; {report['train_rows']:,} training and {report['validation_rows']:,} validation rows.",
        "hyperparameters": {  # (min_freq is None for a tokenizer loaded as saved)
            k: v
            for k in (
                "epochs",
                "max_steps",
                "batch_size",
                "lr",
                "min_freq",
                "max_length",
                "seed",
                "max_train_samples",
            )
            # (max_steps: -1 or None is off; a run of 3 steps said only "epochs 6")
            if (v := getattr(args, k, None)) is not None and not (k == "max_steps" and v <= 0)
        },
        "metrics": {k: v for k, v in report[split].items() if isinstance(v, float)},
        "eval_data": f"the {split} split",
        "training_results": [
            {k: v for k, v in row.items() if isinstance(v, (int, float))}
            for row in report["history"]
            if "eval_loss" in row
        ],
    }
    # the results the Hub shows on the model's page (the data set: its Hub id, the file's format, or the
    # embedded SMS Spam Collection's Hub id)
    if args.dataset:
        info["datasets"] = [args.dataset]
        kind, called = args.dataset, args.dataset
    elif args.train_file:
        source = Path(args.test_file or args.train_file)
        formats = [x.lstrip(".").lower() for x in source.suffixes if x.lower() not in (".gz", ".bz2", ".xz")]
        kind, called = (formats[-1] if formats else "text"), source.name
    else:
        kind, called = "ucirvine/sms_spam", "SMS Spam Collection v.1"
    info["model_index"] = model_index(
        name, info["metrics"], dataset_type=kind, dataset_name=called, split=split
    )
    if coverage is not None:  # the coverage's details, with the name, size and freezing the config records
        from ..modelcard import _vectors_info

        info["vectors"] = {
            **(getattr(model.config, "pretrained_vectors", None) or {}),
            **_vectors_info(coverage),
        }
    if not args.dataset and not args.train_file:
        from ..data import SMS_SPAM_CITATION

        info["citation"] = SMS_SPAM_CITATION
    write_model_card(model, folder, if_exists="replace", model_name=name, **info)


def _print_report(
    report: dict[str, Any], split: str, names: list[str], multi: bool, output_dir: Path
) -> None:
    final = report[split]
    out = sys.stdout
    print(f"\nrnn-textclf: trained in {report['train_seconds']:.1f} s; {split} split results:", file=out)
    if multi:
        for key, value in final.items():
            print(f"  {key:<12} {value:.4f}", file=out)
    else:
        print(f"  accuracy     {final['accuracy']:.4f}", file=out)
        print(f"  macro F1     {final['macro_f1']:.4f}", file=out)
        print(f"  {'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}", file=out)
        for name in names:
            row = final["per_class"][name]
            print(
                f"  {name:<14}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}",
                file=out,
            )
    print(f"Saved model, tokenizer, model card, metrics.json and plots to {output_dir}/", file=out)
