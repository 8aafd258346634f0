"""How fast can PyTorch eager int8 make this model at batch 32? Every int8 route, side by side in one run.

Issue 8 asks for dynamic int8 at least 2x fp32 throughput at batch 32. ``benchmarks/inference.py`` measures
the shipped paths; this script measures the ceiling of the PyTorch eager int8 route for the same model
shape (BiLSTM with max pooling, embedding 100, hidden ``--hidden-sizes``, AG News texts in data-set order,
batches of 32 from ``PackedSequenceCollator``, one thread), so that the claim "cannot reach 2x at hidden
128" can be re-checked on another CPU:

  fp32 eager             RNNClassifier, packed sequences (the baseline of every ratio)
  int8 eager [engine]    rnn_textclf.quantize_dynamic with each torch.backends.quantized engine
  rnn only fp32 / int8   model.rnn alone on the already packed batches: what int8 gains where it acts;
                         the whole model cannot gain more than this with the packed int8 LSTM
  unpacked fp32 / int8   the ONNX path (UnpackedRNNClassifier: padded batch, per-row reversal), as is
                         and with torch.ao dynamic int8 over its LSTMs: no packing, but every padded step
  int8 loop              a hand-written recurrence: one int8 matrix product for the input projection of
                         every token of both directions (hoisted out of the time loop, as onnxruntime
                         does), then per step one int8 product with a block-diagonal recurrent matrix
                         for both directions and the gate arithmetic in Python
  fp32 loop              the same recurrence in fp32 (is a gain the loop's or int8's?)

Weights are the seeded initialisation (speed does not depend on their values); every variant's argmax
agreement with fp32 eager is printed. Timings are interleaved: each round times every variant once in a
rotating order; the table gives medians and the median per-round ratio to fp32 eager.

    python benchmarks/int8_ceiling.py [--hidden-sizes 128 256] [--repeats 5] [--texts 640] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from inference import (  # benchmarks/ is on sys.path when run as a script
    DATA,
    make_batches,
    model_config,
    read_ag_news,
    timed_rounds,
)
from torch import nn

from rnn_textclf import PackedSequenceCollator, RNNClassifier, quantize_dynamic
from rnn_textclf.export import UnpackedRNNClassifier
from rnn_textclf.tokenization import RNNTokenizer

logger = logging.getLogger("benchmarks.int8_ceiling")


def _prepack_int8(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Any:
    """Per-output-row symmetric int8 weights (and a float bias), packed for ``quantized::linear_dynamic``."""
    scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-8).double()
    zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
    qweight = torch.quantize_per_channel(weight.float(), scales, zero_points, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(qweight, bias)


class HoistedLoop(nn.Module):
    """One-layer BiLSTM + max pooling as a Python time loop over sorted rows (see the module docstring).

    Built to spend as little as possible outside the matrix products: gate rows are reordered to
    (input, forget, output, cell) so that one sigmoid covers all four gates of both directions, using
    ``tanh(x) = 2 * sigmoid(2x) - 1`` (the cell-gate rows are doubled, and the cell state is kept doubled,
    ``C = 2c``, so ``tanh(c) = 2 * sigmoid(C) - 1``). Both directions run in the same step: the backward
    one reads each row reversed within its length, so at step ``t`` the rows still running are the same
    ``counts[t]`` longest rows for both. ``block=True`` does both directions' recurrent products as one
    product with a block-diagonal ``(8H, 2H)`` matrix (one call, twice the multiply-adds). Empty texts are
    not special-cased (the timed texts have none; the model zeroes their pooled vector).
    """

    def __init__(self, model: RNNClassifier, int8: bool, block: bool) -> None:
        super().__init__()
        config, rnn = model.config, model.rnn
        if config.rnn_type != "lstm" or config.num_layers != 1 or not config.bidirectional:
            raise ValueError("HoistedLoop covers the one-layer bidirectional LSTM of this benchmark only")
        hidden = config.hidden_size
        self.hidden, self.int8, self.block = hidden, int8, block
        self.embeddings = model.embeddings
        self.classifier = model.classifier

        def gates(weight: torch.Tensor) -> torch.Tensor:  # (4H, in) rows i, f, g, o -> i, f, o, 2g
            i, f, g, o = weight.detach().float().chunk(4, 0)
            return torch.cat([i, f, o, 2 * g])

        suffixes = ("", "_reverse")
        self.w_ih = [gates(getattr(rnn, f"weight_ih_l0{x}")) for x in suffixes]  # 2 x (4H, emb)
        self.b = [gates(getattr(rnn, f"bias_ih_l0{x}") + getattr(rnn, f"bias_hh_l0{x}")) for x in suffixes]
        w_hh = [gates(getattr(rnn, f"weight_hh_l0{x}")) for x in suffixes]  # 2 x (4H, H)
        if block:
            diagonal = torch.zeros(8 * hidden, 2 * hidden)  # rows: forward gates, then backward gates
            diagonal[: 4 * hidden, :hidden] = w_hh[0]
            diagonal[4 * hidden :, hidden:] = w_hh[1]
            w_hh = [diagonal]
        self.w_hh = w_hh
        if int8:
            self.p_ih = [_prepack_int8(w, b) for w, b in zip(self.w_ih, self.b, strict=True)]
            self.p_hh = [_prepack_int8(w) for w in self.w_hh]

    def _input(self, x: torch.Tensor, direction: int) -> torch.Tensor:
        if self.int8:
            return torch.ops.quantized.linear_dynamic(x, self.p_ih[direction], True)
        return nn.functional.linear(x, self.w_ih[direction], self.b[direction])

    def _recurrent(self, h: torch.Tensor, index: int) -> torch.Tensor:
        if self.int8:
            return torch.ops.quantized.linear_dynamic(h, self.p_hh[index], True)
        return h @ self.w_hh[index].T

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor, **_: Any) -> torch.Tensor:
        hidden = self.hidden
        batch = input_ids.shape[0]
        run_lengths, order = lengths.clamp(min=1).sort(descending=True)
        seq = int(run_lengths[0])
        ids = input_ids[order, :seq]  # (batch, seq), longest first
        positions = torch.arange(seq)
        steps = positions[None, :] < run_lengths[:, None]  # (batch, seq)
        reverse = torch.where(steps, run_lengths[:, None] - 1 - positions, positions)
        # Packed, time-major token ids: for each t the rows still running (a prefix, rows are sorted).
        mask_t = steps.T  # (seq, batch)
        pre = [
            self._input(self.embeddings(ids.T[mask_t]), 0),  # (tokens, 4H)
            self._input(self.embeddings(torch.gather(ids, 1, reverse).T[mask_t]), 1),
        ]
        counts = mask_t.sum(1).tolist()  # rows running at each step
        gate = torch.empty(batch, 2, 4 * hidden)  # (batch, dirs, 4H)
        h = torch.zeros(batch, 2, hidden)
        cell2 = torch.zeros(batch, 2, hidden)  # twice the cell state
        pooled = torch.full((batch, 2, hidden), torch.finfo(torch.float32).min)
        offset = 0
        for rows in counts:
            if self.block:  # h[:rows] is contiguous: (rows, 2H) = [forward, backward]
                torch.add(
                    self._recurrent(h[:rows].view(rows, 2 * hidden), 0).view(rows, 2, 4 * hidden),
                    torch.stack([pre[0][offset : offset + rows], pre[1][offset : offset + rows]], dim=1),
                    out=gate[:rows],
                )
            else:
                for d in (0, 1):
                    torch.add(
                        self._recurrent(h[:rows, d], d), pre[d][offset : offset + rows], out=gate[:rows, d]
                    )
            i, f, o, g = gate[:rows].sigmoid_().view(rows, 2, 4, hidden).unbind(2)  # (rows, dirs, H)
            cell2 = torch.addcmul(f * cell2[:rows], i, g.mul(4).sub_(2))  # 2c' = f 2c + i 2 tanh(.)
            h = torch.addcmul(o.neg(), o, cell2.sigmoid(), value=2)  # o tanh(c') = 2 o sigmoid(2c') - o
            torch.maximum(pooled[:rows], h, out=pooled[:rows])  # max pooling; order is irrelevant
            offset += rows
        restored = torch.empty(batch, 2 * hidden)
        restored[order] = pooled.view(batch, 2 * hidden)
        return self.classifier(restored)


def summary(values: list[float], base: list[float]) -> dict[str, float]:
    """Median seconds and the median of the per-round speed ratios to ``base``."""
    return {
        "seconds": statistics.median(values),
        "ratio_to_fp32": statistics.median(b / v for v, b in zip(values, base, strict=True)),
    }


def measure(
    hidden: int, tokenizer: RNNTokenizer, batches: list[dict[str, Any]], repeats: int, default_engine: str
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = RNNClassifier(model_config(tokenizer, hidden)).eval()
    engines = [e for e in torch.backends.quantized.supported_engines if e not in ("none", default_engine)]
    int8: dict[str, Any] = {}
    for engine in [default_engine, *engines]:
        torch.backends.quantized.engine = engine  # weights are packed for the engine active at quantization
        try:
            int8[engine] = quantize_dynamic(model)
            with torch.inference_mode():
                int8[engine](**batches[0])
        except RuntimeError as error:  # an engine this CPU or build cannot run
            logger.info("engine %s skipped: %s", engine, error)
            int8.pop(engine, None)
    torch.backends.quantized.engine = default_engine
    unpacked = UnpackedRNNClassifier(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unpacked_int8 = torch.ao.quantization.quantize_dynamic(
            UnpackedRNNClassifier(model).eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8
        )
    loops = {
        f"{kind} loop{' block' if block else ''}": HoistedLoop(model, int8=kind == "int8", block=block)
        for kind in ("fp32", "int8")
        for block in (False, True)
    }

    def whole(name: str, call: Callable[[dict[str, Any]], torch.Tensor], engine: str = default_engine):
        def run() -> torch.Tensor:
            torch.backends.quantized.engine = engine
            with torch.inference_mode():
                return torch.cat([call(b) for b in batches])

        return name, run

    # The recurrent layer alone, on inputs packed beforehand (embedding and packing excluded).
    with torch.inference_mode():
        packed_inputs = []
        for b in batches:
            lengths, order = b["lengths"].clamp(min=1).sort(descending=True)
            packed_inputs.append(
                nn.utils.rnn.pack_padded_sequence(
                    model.embeddings(b["input_ids"][order]), lengths, batch_first=True
                )
            )

    def rnn_only(name: str, rnn: nn.Module, engine: str = default_engine):
        def run() -> None:
            torch.backends.quantized.engine = engine
            with torch.inference_mode():
                for packed in packed_inputs:
                    rnn(packed)

        return name, run

    variants = dict(
        [
            whole("fp32 eager", lambda b: model(**b).logits),
            *(whole(f"int8 eager [{e}]", lambda b, m=m: m(**b).logits, e) for e, m in int8.items()),
            rnn_only("rnn only fp32", model.rnn),
            rnn_only("rnn only int8", int8[default_engine].rnn),
            whole("unpacked fp32", lambda b: unpacked(b["input_ids"], b["lengths"])),
            whole("unpacked int8", lambda b: unpacked_int8(b["input_ids"], b["lengths"])),
            *(whole(name, lambda b, m=m: m(b["input_ids"], b["lengths"])) for name, m in loops.items()),
        ]
    )
    outputs = {name: run() for name, run in variants.items()}  # also the warm-up
    reference = outputs["fp32 eager"].argmax(-1)
    agreement = {
        name: float((logits.argmax(-1) == reference).float().mean())
        for name, logits in outputs.items()
        if logits is not None  # the rnn-only runs return nothing
    }
    seconds = timed_rounds(variants, repeats)
    results: dict[str, dict[str, float]] = {}
    for name, values in seconds.items():
        # rnn-only ratios are to the fp32 recurrent layer alone, the others to the whole fp32 model.
        results[name] = summary(
            values, seconds["rnn only fp32" if name.startswith("rnn only") else "fp32 eager"]
        )
        if name in agreement:
            results[name]["argmax_agreement"] = agreement[name]
    torch.backends.quantized.engine = default_engine  # the run closures switch it
    return {"hidden_size": hidden, "default_engine": default_engine, "variants": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DATA, help="AG News test.csv (class, title, description)"
    )
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--texts", type=int, default=640, help="texts timed per round (default: 640)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (default: 5)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not args.data.is_file():
        parser.error(f"--data {str(args.data)!r} does not exist")
    for name, value in (
        ("--texts", args.texts),
        ("--repeats", args.repeats),
        *(("--hidden-sizes", h) for h in args.hidden_sizes),
    ):
        if value < 1:
            parser.error(f"{name} must be a positive integer, got {value}")
    torch.set_num_threads(1)
    texts, _ = read_ag_news(args.data)
    # Vocabulary from the first 6,000 texts, timing on the next ones (data-set order, mixed lengths).
    tokenizer = RNNTokenizer.train_from_iterator(texts[:6000], min_freq=2)
    ids = tokenizer(texts[6000 : 6000 + args.texts], truncation=True, max_length=256)["input_ids"]
    collator = PackedSequenceCollator(tokenizer)
    batches = make_batches(collator, ids, 32)
    load_before = os.getloadavg()
    default_engine = torch.backends.quantized.engine  # this build's choice for this CPU
    runs = []
    for hidden in args.hidden_sizes:
        logger.info(
            "hidden %d: timing %d texts in batches of 32, %d rounds...", hidden, len(ids), args.repeats
        )
        runs.append(measure(hidden, tokenizer, batches, args.repeats, default_engine))
    load_after = os.getloadavg()

    print(
        f"\nBiLSTM-max, embedding 100, batch 32, {len(ids)} AG News texts, 1 thread, torch {torch.__version__}"
    )
    print(
        "x = median per-round ratio to fp32 eager (rnn only: to rnn only fp32); agree = argmax vs fp32 eager"
    )
    for run in runs:
        print(f"\nhidden {run['hidden_size']} (default quantized engine: {run['default_engine']})")
        print(f"{'variant':<22} {'texts/s':>9} {'x':>6} {'agree':>7}")
        for name, value in run["variants"].items():
            agree = value.get("argmax_agreement")
            print(
                f"{name:<22} {len(ids) / value['seconds']:>9,.0f} {value['ratio_to_fp32']:>6.2f} "
                f"{'' if agree is None else f'{agree:.4f}':>7}"
            )
    print(f"\nload average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    if args.json:
        result = {
            "texts": len(ids),
            "batch_size": 32,
            "repeats": args.repeats,
            "runs": runs,
            "environment": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "quantized_engines": torch.backends.quantized.supported_engines,
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        logger.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
