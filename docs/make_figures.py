"""Makes the figures of the docs (PNG files under docs/img/). Run from the repository root:

    python docs/make_figures.py                        # padded_vs_packed.png, padding_per_batch.png
    python docs/make_figures.py --seed-json seed.json  # + seed_accuracy.png from
                                                       #   examples/seed_padded_vs_packed.py --json seed.json

* ``padded_vs_packed.png``: one batch of five real AG News texts (the first five of the canonical test
  CSV), tokenized by RNNTokenizer, as the RNN reads it padded (every row runs to the longest row and the
  lecture reads the state at the last, padded, step) and packed (each row stops at its own last token,
  where its final state is read).
* ``padding_per_batch.png``: the share of padding in batches of 32 over the whole AG News test CSV,
  random batches (the lecture's DataLoader) vs batches grouped by length (``BucketBatchSampler``, pools
  of 50 batches sorted by length, as ``train_sampling_strategy="group_by_length"`` does), measured here.
* ``seed_accuracy.png`` (only with ``--seed-json``): validation accuracy per epoch of both variants.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from rnn_textclf import BucketBatchSampler, RNNTokenizer

logger = logging.getLogger("make_figures")

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news_csv" / "test.csv"
PAD_COLOR, TOKEN_COLOR, READ_COLOR = "#e6e6e6", "#9ecae1", "#e6550d"


def read_ag_news(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [f"{title} {description}" for _, title, description in csv.reader(handle)]


def draw_batch(ax: plt.Axes, words: list[list[str]], width: int, packed: bool) -> None:
    """Draws one batch as a grid: a row per text, a column per time step."""
    for row, tokens in enumerate(words):
        y = len(words) - 1 - row
        for step in range(width):
            real = step < len(tokens)
            if packed and not real:
                continue  # a packed sequence has no cell here: the RNN never runs this step
            last = step == (len(tokens) - 1 if packed else width - 1)
            ax.add_patch(
                Rectangle(
                    (step, y),
                    0.95,
                    0.9,
                    facecolor=TOKEN_COLOR if real else PAD_COLOR,
                    edgecolor=READ_COLOR if last else "white",
                    linewidth=2.5 if last else 0.5,
                )
            )
            label = tokens[step] if real else "<pad>"
            ax.text(step + 0.47, y + 0.45, label[:9], ha="center", va="center", fontsize=6)
        read = len(tokens) - 1 if packed else width - 1
        ax.annotate(
            "",
            xy=(read + 1.0, y + 0.45),
            xytext=(width + 0.9, y + 0.45),
            arrowprops={"arrowstyle": "<-", "color": READ_COLOR, "lw": 1.2},
        )
    ax.set_xlim(-0.1, width + 1.2)
    ax.set_ylim(-0.2, len(words))
    ax.set_xticks(np.arange(width) + 0.47, [str(i + 1) for i in range(width)], fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("time step")
    for spine in ax.spines.values():
        spine.set_visible(False)


def padded_vs_packed(texts: list[str], tokenizer: RNNTokenizer, max_tokens: int = 14) -> Path:
    # Five real texts, cut to at most max_tokens words so the grid stays readable.
    words = [
        tokenizer.convert_ids_to_tokens(tokenizer(t)["input_ids"])[: max(3, max_tokens - 3 * i)]
        for i, t in enumerate(texts[:5])
    ]
    width = max(len(w) for w in words)
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.6))
    draw_batch(axes[0], words, width, packed=False)
    axes[0].set_title(
        "padded (the lecture): every row runs to the longest; the state is read at the last, padded step",
        fontsize=9,
    )
    draw_batch(axes[1], words, width, packed=True)
    axes[1].set_title(
        "packed (rnn-textclf): each row stops at its own last token, where its final state is read",
        fontsize=9,
    )
    fig.text(
        0.5,
        0.005,
        "blue: real tokens (AG News test rows 1-5, shortened), grey: padding, orange: the state the classifier reads",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = IMG / "padded_vs_packed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def padding_fraction(lengths: np.ndarray, batches: list[list[int]]) -> np.ndarray:
    return np.array([1 - lengths[b].sum() / (lengths[b].max() * len(b)) for b in batches])


def padding_per_batch(texts: list[str], tokenizer: RNNTokenizer, batch_size: int = 32) -> tuple[Path, dict]:
    lengths = np.array(tokenizer(texts, return_length=True)["length"])
    order = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    grouped_batches = list(BucketBatchSampler(lengths, batch_size, seed=0))
    random_pad = padding_fraction(lengths, random_batches)
    grouped_pad = padding_fraction(lengths, grouped_batches)
    total = {
        "random": 1 - lengths.sum() / sum(lengths[b].max() * len(b) for b in random_batches),
        "grouped": 1 - lengths.sum() / sum(lengths[b].max() * len(b) for b in grouped_batches),
    }
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bins = np.linspace(0, max(random_pad.max(), grouped_pad.max()) + 0.02, 40)
    ax.hist(random_pad, bins=bins, alpha=0.7, label=f"random batches: {total['random']:.1%} padding overall")
    ax.hist(
        grouped_pad, bins=bins, alpha=0.7, label=f"grouped by length: {total['grouped']:.1%} padding overall"
    )
    ax.set_xlabel("share of padding in a batch")
    ax.set_ylabel("batches")
    ax.set_title(f"AG News test set ({len(lengths):,} texts), batches of {batch_size}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = IMG / "padding_per_batch.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, total


def seed_accuracy(seed_json: Path) -> Path:
    results = json.loads(seed_json.read_text())
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for variant, row in results["variants"].items():
        history = row["valid_history"]
        ax.plot(range(1, len(history) + 1), history, marker="o", label=variant)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"{results['data']}: nn.RNN, padded vs packed", fontsize=10)
    ax.legend()
    fig.tight_layout()
    path = IMG / "seed_accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ag-news", type=Path, default=AG_NEWS, help="the canonical AG News test.csv")
    parser.add_argument("--seed-json", type=Path, help="--json output of examples/seed_padded_vs_packed.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    IMG.mkdir(parents=True, exist_ok=True)
    texts = read_ag_news(args.ag_news)
    tokenizer = RNNTokenizer.train_from_iterator(texts, min_freq=1)
    logger.info("wrote %s", padded_vs_packed(texts, tokenizer))
    path, total = padding_per_batch(texts, tokenizer)
    logger.info(
        "wrote %s (padding: random %.1f%%, grouped %.1f%%)",
        path,
        100 * total["random"],
        100 * total["grouped"],
    )
    if args.seed_json:
        logger.info("wrote %s", seed_accuracy(args.seed_json))


if __name__ == "__main__":
    main()
