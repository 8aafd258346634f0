"""Classification metrics in NumPy (no scikit-learn needed) and a ``compute_metrics`` for ``Trainer``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_labels: int) -> np.ndarray:
    """Counts ``(true, predicted)`` pairs: row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    return np.bincount(labels * num_labels + preds, minlength=num_labels * num_labels).reshape(
        num_labels, num_labels
    )


def classification_metrics(
    labels: Sequence[int] | np.ndarray,
    preds: Sequence[int] | np.ndarray,
    label_names: Sequence[str] | None = None,
    num_labels: int | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support of single-label predictions.

    Macro-F1 averages the F1 of the classes that occur in ``labels`` or ``preds``, as scikit-learn's
    ``f1_score(average="macro")``.

    Args:
        labels: True class ids.
        preds: Predicted class ids.
        label_names: Class names, index = class id (default ``"0"``, ``"1"``, ...).
        num_labels: The number of classes (e.g. the logits' width); default: from ``label_names``, or the
            largest id seen. With it the same keys come back whatever classes an evaluation set holds.

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {name: {"precision", "recall", "f1", "support"}},
        "confusion_matrix"}``; for two classes also ``"f1"`` of class 1 (e.g. spam F1).
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if labels.shape != preds.shape:
        raise ValueError(f"`labels` and `preds` differ in shape: {labels.shape} vs {preds.shape}.")
    num = max(
        num_labels or 0,
        len(label_names) if label_names else 0,
        int(labels.max(initial=-1)) + 1,
        int(preds.max(initial=-1)) + 1,
    )
    names = list(label_names) if label_names else [str(i) for i in range(num)]
    cm = confusion_matrix(labels, preds, num)
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    # as scikit-learn's f1_score(average="macro"): over the classes in the labels or the predictions (a
    # class only predicted, wrongly, counts with F1 0; one in neither is left out)
    present = (cm.sum(1) > 0) | (cm.sum(0) > 0)
    result: dict[str, Any] = {
        "accuracy": float((labels == preds).mean()) if labels.size else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            names[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(cm[i].sum()),
            }
            for i in range(num)
        },
        "confusion_matrix": cm.tolist(),
    }
    if num == 2:
        result["f1"] = float(f1[1])
    return result


def multilabel_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Micro-F1, macro-F1 and exact-match accuracy of multi-label sigmoid scores."""
    labels = np.asarray(labels) > 0.5
    preds = np.asarray(scores) >= threshold
    tp = (labels & preds).sum(0).astype(float)
    fp = (~labels & preds).sum(0).astype(float)
    fn = (labels & ~preds).sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1.0)
    return {
        "exact_match": float((labels == preds).all(1).mean()),
        "micro_f1": float(micro),
        "macro_f1": float(per_f1.mean()),
    }


def make_compute_metrics(
    problem_type: str | None = None, label_names: Sequence[str] | None = None
) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for ``Trainer``: accuracy/macro-F1 (and F1 for two classes), or multi-label F1s,
    or MSE for regression.

    ``problem_type`` None: told from the predictions and labels (one output column: regression; labels
    with a column per output: multi-label when they are all 0/1, else regression; else single-label
    classes). Pass the model's ``config.problem_type`` where it is set: 0/1 regression targets cannot be
    told from multi-label ones. Single-label rows labelled ``-100`` (ignored by the loss) are left out of
    the metrics, and the classes are the logits' width, so a two-class model always reports ``f1``.
    """

    def compute(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        labels = np.asarray(labels)
        kind = problem_type
        if kind is None:
            if logits.ndim == 1 or logits.shape[-1] == 1:
                kind = "regression"
            elif labels.ndim == 2 and labels.shape == logits.shape:
                # targets other than 0/1 are numbers to predict, not labels to threshold
                binary = np.isin(labels, (0, 1)).all()
                kind = "multi_label_classification" if binary else "regression"
        if kind == "regression":
            return {"mse": float(np.mean((logits.reshape(labels.shape) - labels) ** 2))}
        if kind == "multi_label_classification":
            return multilabel_metrics(labels, 1 / (1 + np.exp(-logits)))
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ValueError(
                "make_compute_metrics: the labels are not class ids (fractional values) for "
                f"{logits.shape[-1]}-class logits; pass problem_type='regression' or "
                "'multi_label_classification'."
            )
        kept = labels != -100  # (rows,) the loss's ignore_index: no class to score
        full = classification_metrics(labels[kept], logits.argmax(-1)[kept], label_names, logits.shape[-1])
        return {k: v for k, v in full.items() if isinstance(v, float)}

    return compute


__all__ = ["classification_metrics", "confusion_matrix", "make_compute_metrics", "multilabel_metrics"]
