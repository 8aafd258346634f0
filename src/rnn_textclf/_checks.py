"""Input checks shared by the public entry points (one wording for one mistake)."""

from __future__ import annotations

import sys
from typing import Any


def refuse_split_dict(value: Any, name: str, *, then: str = "") -> None:
    """Raise ``TypeError`` for a ``DatasetDict`` (or ``IterableDatasetDict``) given where one split belongs.

    Such a dict iterates over its split names, so unchecked it fails far from the call (deep in a sampler)
    or, as texts, yields the words ``'train'`` and ``'test'``.

    Args:
        value: What the caller passed.
        name: The argument's name, as the user wrote it (``"train_dataset"``).
        then: A sentence appended to the message (what else to do).

    Raises:
        TypeError: Naming the argument, the splits and the split to pass instead.
    """
    # Without `datasets` imported nothing can be one of its dicts: plain lists skip the import.
    datasets = sys.modules.get("datasets")
    if datasets is None or not isinstance(value, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return
    splits = list(value)
    first = "train" if "train" in splits or not splits else splits[0]
    message = f"{name} is a {type(value).__name__} with splits {splits}, not one split: did you mean {name}[{first!r}]?"
    raise TypeError(f"{message} {then}" if then else message)
