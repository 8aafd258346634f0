"""Subprocess side of tests/test_reliability.py: training runs that can be killed, and a save loop.

Run as ``python reliability_worker.py train OUT [--kill-after-save STEP] [--resume]``,
``python reliability_worker.py save-loop FOLDER`` or ``python reliability_worker.py cli
[--kill-after-save STEP] -- ARGS`` (``rnn-textclf ARGS`` in this process; with ``--kill-after-save``
every ``RNNTrainer`` it builds gets a callback that kills the process once checkpoint STEP is saved).
They kill themselves with SIGKILL at a chosen point, so the parent test sees exactly what a crash (OOM killer, pre-emption, power cut of the
process) leaves behind. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

torch.set_num_threads(1)

TRAIN_ROWS = 600
EVAL_ROWS = 200
SEED = 1234


def _kill_self() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def train(out: Path, kill_after_save: int | None, resume: bool) -> None:
    """2 epochs of a tiny GRU on 600 SMS messages, length-grouped, with dropout (so RNG state matters)."""
    from transformers import TrainerCallback, TrainingArguments

    from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer
    from rnn_textclf.data import load_sms_spam
    from rnn_textclf.metrics import make_compute_metrics

    torch.use_deterministic_algorithms(True)
    data = load_sms_spam(seed=0)
    train_ds = data["train"].select(range(TRAIN_ROWS))
    eval_ds = data["validation"].select(range(EVAL_ROWS))
    tokenizer = RNNTokenizer.train_from_iterator(train_ds["text"], min_freq=2)

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=64, return_length=True)

    train_ds = train_ds.map(encode, batched=True)
    eval_ds = eval_ds.map(encode, batched=True)
    args = TrainingArguments(
        str(out / "run"),
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=5e-2,  # (2e-2 stayed at all-ham for 5 of --seed 0-19; 5e-2: macro F1 0.85-0.95)
        num_train_epochs=2,
        train_sampling_strategy="group_by_length",
        save_strategy="steps",
        save_steps=12,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=SEED,
        full_determinism=True,
    )
    # Trainer re-seeds (full_determinism) before building the model through model_init.
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
        embedding_dim=16,
        hidden_size=16,
        rnn_type="gru",
        bidirectional=True,
        pooling="mean_max",
        embedding_dropout=0.2,
        classifier_dropout=0.2,
    )

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if kill_after_save is not None and state.global_step == kill_after_save:
                (out / "killed-at").write_text(str(state.global_step))
                _kill_self()

    trainer = RNNTrainer(
        model_init=lambda: RNNClassifier(config),
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics(),
        callbacks=[KillAfterSave()],
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(out / "final"))
    metrics = trainer.evaluate()
    losses = {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}
    (out / "result.json").write_text(json.dumps({"metrics": metrics, "losses": losses}, sort_keys=True))


def save_loop(folder: Path) -> None:
    """Saves a ~80 MB model over ``folder`` again and again; dies by SIGKILL inside the weights write.

    safetensors' writer is wrapped so that the second save writes half of the file, signals the
    parent through ``folder.parent / "inside-save"`` and waits; the parent then kills this process. No
    timing: the kill always lands in the middle of writing ``model.safetensors`` in the staging folder.
    """
    import safetensors.torch
    import transformers.modeling_utils as modeling_utils

    from rnn_textclf import RNNClassifier, RNNClassifierConfig

    torch.manual_seed(0)
    config = RNNClassifierConfig(vocab_size=200_000, embedding_dim=100, hidden_size=8, num_labels=2)
    model = RNNClassifier(config)
    marker = folder.parent / "inside-save"
    calls = {"n": 0}
    real_save_file = safetensors.torch.save_file

    def slow_save_file(tensors, filename, metadata=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            return real_save_file(tensors, filename, metadata=metadata)
        data = safetensors.torch.save(tensors, metadata=metadata)
        with open(filename, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
            marker.write_text(str(filename))
            signal.pause()  # the parent kills us here, mid-write
            handle.write(data[len(data) // 2 :])
        return None

    modeling_utils.safe_save_file = slow_save_file
    while True:
        with torch.no_grad():
            model.embeddings.weight.add_(1.0)  # every save differs from the one before
        model.save_pretrained(folder)
        (folder.parent / "saved").write_text(str(calls["n"]))


def cli(argv: list[str], kill_after_save: int | None) -> int:
    """``rnn-textclf ARGV`` in this process, SIGKILLed right after the checkpoint of step ``kill_after_save``."""
    from transformers import TrainerCallback

    from rnn_textclf.cli import main as cli_main
    from rnn_textclf.trainer import RNNTrainer

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == kill_after_save:
                _kill_self()

    if kill_after_save is not None:
        init = RNNTrainer.__init__

        def init_with_kill(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            init(self, *args, **kwargs)
            self.add_callback(KillAfterSave())

        RNNTrainer.__init__ = init_with_kill  # type: ignore[method-assign]
    return cli_main(argv)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train")
    train_parser.add_argument("out", type=Path)
    train_parser.add_argument("--kill-after-save", type=int)
    train_parser.add_argument("--resume", action="store_true")
    loop_parser = sub.add_parser("save-loop")
    loop_parser.add_argument("folder", type=Path)
    cli_parser = sub.add_parser("cli")
    cli_parser.add_argument("--kill-after-save", type=int)
    cli_parser.add_argument("cli_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "cli":
        sys.exit(cli([a for a in args.cli_args if a != "--"], args.kill_after_save))
    if args.command == "train":
        train(args.out, args.kill_after_save, args.resume)
    else:
        save_loop(args.folder)


if __name__ == "__main__":
    main()
