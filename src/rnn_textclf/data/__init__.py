"""Data that ships with rnn-textclf: the SMS Spam Collection (the CLI's default data set).

SMS Spam Collection v.1, Tiago A. Almeida and José María Gómez Hidalgo (2011), redistributed with its
copyright notice and disclaimer (``SMS_SPAM_README.txt`` beside this file). Cite:
Almeida, T.A., Gómez Hidalgo, J.M., Yamakami, A. Contributions to the Study of SMS Spam Filtering: New
Collection and Results. Proceedings of the 2011 ACM Symposium on Document Engineering (DOCENG'11).
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

SMS_SPAM_FILE = "sms_spam_collection.tsv.gz"
#: sha256 of the uncompressed original ``SMSSpamCollection`` file.
SMS_SPAM_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
SMS_SPAM_LABELS = ("ham", "spam")
SMS_SPAM_CITATION = (
    "Almeida, T.A., Gómez Hidalgo, J.M., Yamakami, A. Contributions to the Study of SMS Spam Filtering: "
    "New Collection and Results. Proceedings of the 2011 ACM Symposium on Document Engineering (DOCENG'11), 2011."
)


def _read_sms_spam() -> tuple[list[str], list[int]]:
    raw = gzip.decompress(resources.files(__name__).joinpath(SMS_SPAM_FILE).read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SMS_SPAM_SHA256:
        raise RuntimeError(
            f"The bundled SMS Spam Collection is corrupted (sha256 {digest}, expected {SMS_SPAM_SHA256}); "
            "reinstall rnn-textclf."
        )
    texts, labels = [], []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        label, sep, text = line.partition("\t")
        if not sep or label not in SMS_SPAM_LABELS:
            raise RuntimeError(f"Bundled SMS Spam Collection, line {number}: expected 'ham|spam<TAB>text'.")
        texts.append(text)
        labels.append(SMS_SPAM_LABELS.index(label))
    return texts, labels


def stratified_split(
    labels: np.ndarray | list[int], fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Splits row indices into parts of the given fractions, keeping each class's share in every part.

    Args:
        labels: Class id of every row.
        fractions: Share of each part; must sum to 1.
        seed: Seed of the shuffle within each class.

    Returns:
        One sorted index array per part; together they hold every row exactly once.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f <= 0 for f in fractions):
        raise ValueError(f"`fractions` must be positive and sum to 1, got {fractions}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        bounds = np.round(np.cumsum(fractions) * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, bounds[:-1]), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def load_sms_spam(seed: int = 42, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> DatasetDict:
    """The bundled SMS Spam Collection (5,574 messages: 4,827 ham, 747 spam) as a seeded stratified split.

    Args:
        seed: Seed of the split.
        fractions: Shares of train, validation and test.

    Returns:
        ``DatasetDict`` with ``train``/``validation``/``test``, columns ``text`` and ``label``
        (``ClassLabel(names=["ham", "spam"])``).
    """
    texts, labels = _read_sms_spam()
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(SMS_SPAM_LABELS))})
    full = Dataset.from_dict({"text": texts, "label": labels}, features=features)
    train, validation, test = stratified_split(labels, fractions, seed)
    return DatasetDict(train=full.select(train), validation=full.select(validation), test=full.select(test))


__all__ = ["SMS_SPAM_CITATION", "SMS_SPAM_LABELS", "load_sms_spam", "stratified_split"]
