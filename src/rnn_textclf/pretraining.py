"""Language-model pretraining of a classifier's embedding and RNN on its own texts (Dai & Le 2015).

Without pretrained word vectors (a language or domain GloVe does not cover, character tokens) the
embedding and the RNN start from random values and learn only from the labelled texts. Training them
first to predict each token of the texts, which needs no labels, gives the classifier a start that has
read the language: Dai & Le ("Semi-supervised Sequence Learning", 2015) pretrained LSTMs this way. The
wrapper here trains with the one engine, ``RNNTrainer``, like everything else:

    lm = RNNLanguageModel(model)          # shares model's embedding and RNN
    RNNTrainer(model=lm, args=args, train_dataset=tokenized_texts, processing_class=tokenizer).train()
    RNNTrainer(model=model, ...).train()  # the classifier, from the pretrained embedding and RNN
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import ModelOutput

from .modeling import RNNClassifier

__all__ = ["LanguageModelOutput", "RNNLanguageModel"]

#: Vocabularies up to this size get a full softmax head; larger ones an adaptive softmax
#: (`torch.nn.AdaptiveLogSoftmaxWithLoss`, Grave et al. 2017) with clusters cut at these ids.
FULL_SOFTMAX_MAX_VOCAB = 4096
ADAPTIVE_SOFTMAX_CUTOFFS = (2048, 8192, 32768)


def _head(size: int, vocab_size: int, std: float) -> nn.Module:
    """A next-token head: the full softmax for small vocabularies, else an adaptive softmax.

    Both give the exact log-likelihood of every token (the perplexity means the same). The adaptive one
    scores the 2,048 most frequent tokens (ranked by `RNNLanguageModel`'s ``token_counts``; without them,
    the first ids: rnn-textclf's tokenizers number tokens by frequency) and one entry per rarer cluster at
    full width, the rarer clusters at 1/4, 1/16 (and 1/64) of it: with an 18,300-word vocabulary and
    hidden size 64, a language-model step costs 6x less (the full softmax was 94% of it).
    """
    cutoffs = [c for c in ADAPTIVE_SOFTMAX_CUTOFFS if c < vocab_size]
    # Each rarer cluster is scored at a quarter of the width before it: none narrower than 4 (a hidden
    # size of 64 keeps two clusters; the rarest tokens then share the last one).
    while cutoffs and size // 4 ** len(cutoffs) < 4:
        cutoffs.pop()
    if vocab_size <= FULL_SOFTMAX_MAX_VOCAB or not cutoffs:
        head: nn.Module = nn.Linear(size, vocab_size)
    else:
        head = nn.AdaptiveLogSoftmaxWithLoss(size, vocab_size, cutoffs=cutoffs, div_value=4.0)
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return head


def _summed_nll(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The summed negative log-likelihood of ``targets`` ``(rows,)`` under ``head`` at ``hidden`` ``(rows, size)``."""
    if isinstance(head, nn.AdaptiveLogSoftmaxWithLoss):
        # output: each row's log-probability of its target (summed in float32, as cross_entropy under autocast)
        return -head(hidden, targets).output.float().sum()
    return F.cross_entropy(head(hidden), targets, reduction="sum")


@dataclass
class LanguageModelOutput(ModelOutput):
    """What ``RNNLanguageModel`` returns.

    Args:
        loss: Mean cross-entropy per predicted token (natural log: ``exp(loss)`` is the perplexity).
    """

    loss: torch.Tensor | None = None


class RNNLanguageModel(nn.Module):
    """An ``RNNClassifier``'s embedding and RNN with next-token heads: a language model to pretrain them.

    The forward direction of the RNN predicts each token from the tokens before it; for a bidirectional
    RNN the backward direction also predicts each token from the tokens after it (one linear head per
    direction, as in ELMo; an adaptive softmax for vocabularies above ``FULL_SOFTMAX_MAX_VOCAB`` tokens,
    see `_head`). The loss is the mean cross-entropy over every predicted token of the batch;
    padding predicts nothing and is never read (the sequences are packed). The wrapper holds the
    classifier's own modules, so training it (with ``RNNTrainer``, on tokenized texts without labels)
    changes the classifier's embedding and RNN in place; the heads are dropped afterwards. The model's
    dropouts, word dropout included, apply while it trains.

    A stacked bidirectional RNN is refused: from its second layer on, each direction reads both directions
    of the layer below, so every position would already have seen the token it is asked to predict.

    Args:
        classifier: The ``RNNClassifier`` to pretrain (a fresh one, or one with word vectors loaded).
        token_counts: How often each token id occurs in the texts to learn from, ``(vocab_size,)``: the
            adaptive softmax then scores the most frequent tokens at full width whatever their ids. Without
            it the ids are taken as frequency-ordered, which rnn-textclf's tokenizers are and a pretrained
            tokenizer is not (BERT's first 2,000 ids are ``[unused*]`` and single characters).

    Raises:
        TypeError: ``classifier`` is not an ``RNNClassifier``.
        ValueError: ``classifier`` is bidirectional with ``num_layers`` > 1.
    """

    def __init__(self, classifier: RNNClassifier, token_counts: Any = None) -> None:
        super().__init__()
        if not isinstance(classifier, RNNClassifier):
            raise TypeError(
                f"RNNLanguageModel pretrains an RNNClassifier, got {type(classifier).__name__}; build the model with "
                "RNNClassifier(RNNClassifierConfig(...)) first."
            )
        config = classifier.config
        if config.bidirectional and config.num_layers > 1:
            raise ValueError(
                f"RNNLanguageModel cannot pretrain a bidirectional RNN with num_layers={config.num_layers}: from the "
                "second layer on, each direction reads both directions of the layer below and so has seen the token "
                "it would predict. Pretrain with num_layers=1 (bidirectional) or bidirectional=False."
            )
        self.classifier = classifier
        rnn = classifier.rnn
        size = getattr(rnn, "proj_size", 0) or rnn.hidden_size  # each direction's output size
        self.direction_size = size
        std = config.initializer_range
        self.next_token = _head(size, config.vocab_size, std)  # forward direction: the token after
        self.previous_token = _head(size, config.vocab_size, std) if config.bidirectional else None
        # Each token id's class in the heads, most frequent first (ties by id): the adaptive softmax's
        # full-width head is for the classes below its first cutoff.
        class_of = None
        if token_counts is not None:
            if isinstance(token_counts, Mapping):
                raise TypeError(
                    "`token_counts` must be a count per token id, in id order ((vocab_size,): e.g. "
                    f"numpy.bincount(ids, minlength={config.vocab_size})), got a {type(token_counts).__name__}."
                )
            counts = torch.as_tensor(token_counts, dtype=torch.float64)
            if counts.shape != (config.vocab_size,) or not bool(torch.isfinite(counts).all()):
                raise ValueError(
                    f"`token_counts` must be {config.vocab_size} finite counts (one per token id), got shape "
                    f"{tuple(counts.shape)}."
                )
            order = torch.sort(-counts, stable=True).indices  # (vocab,) each class's id
            class_of = torch.empty_like(order)
            class_of[order] = torch.arange(order.numel())
        self.class_of: torch.Tensor | None
        self.register_buffer("class_of", class_of, persistent=False)
        self.to(classifier.device)

    @property
    def config(self) -> Any:
        """The classifier's config (``RNNTrainer`` checks the tokenizer against it)."""
        return self.classifier.config

    def get_input_embeddings(self) -> nn.Embedding:
        """The classifier's embedding (what adversarial training and NEFTune perturb)."""
        return self.classifier.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> LanguageModelOutput:
        """The language-model loss of a right-padded batch of token ids.

        Args:
            input_ids: Token ids, shape ``(batch, seq_len)``, right-padded.
            attention_mask: 1 for real tokens, 0 for padding; gives the lengths when ``lengths`` is not given.
            lengths: Number of real tokens per text ``(batch,)`` (``PackedSequenceCollator`` carries them).
            token_type_ids: Accepted and ignored, as by ``RNNClassifier``.
            return_loss: Accepted for ``Trainer``, which then reports ``eval_loss`` without labels; the loss
                is always returned.

        Returns:
            A [`LanguageModelOutput`][rnn_textclf.pretraining.LanguageModelOutput] with ``loss``.
        """
        classifier = self.classifier
        lengths = classifier._check_inputs(input_ids, attention_mask, lengths)
        _, outputs, _ = classifier._encode(input_ids, None, lengths)  # (batch, seq, dirs * size)
        device = outputs.device
        size = self.direction_size
        lengths_dev = lengths.to(device, non_blocking=True)
        steps = torch.arange(max(input_ids.shape[1] - 1, 0), device=device)  # (seq - 1,)
        # Position t predicts token t + 1 (forward) and position t + 1 predicts token t (backward): both
        # for t < length - 1. Boolean indexing keeps only those rows before the vocab-sized projection.
        keep = steps[None, :] < (lengths_dev - 1)[:, None]  # (batch, seq - 1)
        targets = input_ids if self.class_of is None else self.class_of[input_ids]  # (batch, seq)
        total = _summed_nll(self.next_token, outputs[:, :-1, :size][keep], targets[:, 1:][keep])
        count = keep.sum()
        if self.previous_token is not None:
            total = total + _summed_nll(
                self.previous_token, outputs[:, 1:, size:][keep], targets[:, :-1][keep]
            )
            count = count * 2
        loss = total / count.clamp(min=1)
        return LanguageModelOutput(loss=loss)
