"""``python -m rnn_textclf.cli`` (what ``torchrun -m`` and ``accelerate launch -m`` run)."""

from __future__ import annotations

from . import main

raise SystemExit(main())
