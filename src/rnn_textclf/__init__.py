"""rnn-textclf: classic recurrent text classifiers as native Hugging Face models."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
]
