"""Push a small rnn-textclf model and its tokenizer to a Hub, pull it back and run a pipeline on it.

The Hub is whatever ``huggingface_hub`` is configured for: https://huggingface.co by default, or the
server named by ``HF_ENDPOINT`` (set before Python starts). Log in first (``hf auth login``) or set
``HF_TOKEN``. Against a local test server such as the project's ``../shared/hub/minihub.py``, also set
``HF_HUB_DISABLE_XET=1`` (it has no Xet storage) and, for a clean pull, a fresh ``HF_HOME``:

    python ../shared/hub/minihub.py --port 8808 &
    HF_ENDPOINT=http://127.0.0.1:8808 HF_TOKEN=hf_any HF_HUB_DISABLE_XET=1 HF_HOME=$(mktemp -d) \\
        python examples/push_and_pull.py --repo-id acme/spam-gru

Without ``--model-dir`` it first trains a small GRU on the SMS Spam Collection that ships with
rnn-textclf (``--max-train-samples``/``--max-steps`` shorten that); with ``--model-dir`` it pushes a
folder saved before (``rnn-textclf train``'s output, or ``save_pretrained``). It then downloads the repo
into the cache with ``AutoModelForSequenceClassification`` / ``AutoTokenizer``, checks the logits equal
the local model's, and classifies a few texts with ``pipeline("text-classification", model=repo_id)``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
from huggingface_hub import HfApi, constants
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainingArguments,
    pipeline,
    set_seed,
)

from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer
from rnn_textclf.data import SMS_SPAM_CITATION, load_sms_spam

logger = logging.getLogger("push_and_pull")

TEXTS = [
    "WINNER!! You have been selected to receive a free prize. Call now to claim.",
    "Are we still meeting for lunch tomorrow?",
]


def train_small_model(args: argparse.Namespace, folder: Path) -> None:
    """Trains a small GRU on the embedded SMS Spam Collection and saves it (with its tokenizer) to folder."""
    data = load_sms_spam(seed=args.seed)
    if args.max_train_samples:
        data["train"] = data["train"].select(range(min(args.max_train_samples, len(data["train"]))))
    tokenizer = RNNTokenizer.train_from_dataset(data["train"], "text", min_freq=2)
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128, return_length=True), batched=True
    )
    names = data["train"].features["label"].names
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        embedding_dim=32,
        hidden_size=32,
        rnn_type="gru",
        bidirectional=True,
        pooling="max",
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    trainer = RNNTrainer(
        model=RNNClassifier(config),
        args=TrainingArguments(
            str(folder),
            num_train_epochs=args.epochs,
            max_steps=args.max_steps,
            learning_rate=5e-3,
            per_device_train_batch_size=32,
            train_sampling_strategy="group_by_length",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
        ),
        train_dataset=data["train"],
        processing_class=tokenizer,
    )
    trainer.train()
    accuracy = trainer.evaluate(data["test"], metric_key_prefix="test")
    logger.info("trained: test loss %.4f", accuracy["test_loss"])
    trainer.save_model(str(folder))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repo-id", help="the Hub repo to push to (default: YOUR_NAME/rnn-textclf-spam-demo)"
    )
    parser.add_argument("--model-dir", help="push this saved model folder instead of training one")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop training after this many steps")
    parser.add_argument("--max-train-samples", type=int, help="train on only this many SMS messages")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)  # this script's progress; libraries stay at WARNING (no HTTP logs)
    set_seed(args.seed)
    api = HfApi()
    repo_id = args.repo_id or f"{api.whoami()['name']}/rnn-textclf-spam-demo"

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model_dir) if args.model_dir else Path(tmp) / "model"
        if not args.model_dir:
            train_small_model(args, folder)
        model = RNNClassifier.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)

        # Push: one commit with the weights, config, model code, tokenizer and model card.
        info = {"license": "apache-2.0"}
        if not args.model_dir:
            info.update(
                training_data="SMS Spam Collection v.1 (embedded in rnn-textclf), seeded stratified split.",
                citation=SMS_SPAM_CITATION,
            )
        commit = model.push_to_hub(repo_id, tokenizer=tokenizer, private=args.private, model_card_info=info)
        logger.info("pushed %s to %s (commit %s)", folder, repo_id, commit.oid[:10])

    files = sorted(api.list_repo_files(repo_id))
    # Pull: what anyone with rnn-textclf installed does (without it, add trust_remote_code=True).
    pulled = AutoModelForSequenceClassification.from_pretrained(repo_id).eval()
    pulled_tokenizer = AutoTokenizer.from_pretrained(repo_id)
    batch = pulled_tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        same = torch.allclose(pulled(**batch).logits, model(**batch).logits, atol=1e-6)

    classify = pipeline("text-classification", model=repo_id)
    print(f"Hub: {constants.ENDPOINT}  repo: {repo_id}")
    print(f"files: {', '.join(files)}")
    print(f"pulled model: {type(pulled).__name__}, same logits as the pushed one: {same}")
    for text, prediction in zip(TEXTS, classify(TEXTS), strict=True):
        print(f"pipeline: {prediction['label']:<5} {prediction['score']:.3f}  {text}")
    if not same:
        raise SystemExit("the pulled model differs from the pushed one")


if __name__ == "__main__":
    main()
