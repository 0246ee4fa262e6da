"""The int8 variant of an exported graph: which weight matrices to quantize, chosen by measured error.

ONNX Runtime's dynamic quantization (int8 weights per output channel; activations quantized to
uint8 per tensor at run time) of the transformer's Linear layers (``qkv``, ``proj``, ``fc1``,
``fc2`` of every block). The front-end, the patch projection (a Conv), LayerNorm, softmax and the
head stay float32. Quantizing every layer is the fastest but moves the probabilities furthest, and
the layers differ in how much error they add, so :data:`PLANS` go from most to least quantized and
:func:`quantize_int8` keeps the first whose probabilities stay within
:data:`tagger.options.FAST_LIMIT` of the PyTorch float32 model on real audio. When none does, it
keeps the fastest and reports its error (``--precision fast`` then runs fp32; see
:mod:`tagger.precision`).

Before quantizing, :func:`smooth_activations` moves the activations' outlier channels into the
weights (exact in float32). Measured (max |dp| over 8 windows of the example clip, 50 or 527
classes; speed per 10 s window against the fp32 graph, 2-core AMD EPYC with AVX-512 VNNI):

=========  ==============================  ==============================  ============
plan       offline-50, without / with      PaSST-S random weights, with    speed
           smoothing                       smoothing                       (PaSST-S)
=========  ==============================  ==============================  ============
all        1.5e-2 / 8.8e-3                 1.8e-2                          2.15x
no-fc2     1.3e-2 / 5.2e-3                 1.3e-2                          1.47x
qkv-fc1    6.2e-3 / 9.6e-3                 1.2e-2                          1.35x
=========  ==============================  ==============================  ============

So neither model has an int8 graph within 5e-3 here: ``--precision int8`` runs the fastest plan
(its measured difference is in the file's metadata and in ``--verbose``), ``--precision fast``
runs fp32. The max difference over a few windows is a noisy statistic (other smoothing strengths
moved each plan by 2x either way), which is why the limit is checked, not assumed. Also tried
and rejected: static calibration (QDQ, MinMax 3.9e-2, percentile 2.3e-2 on offline-50) and
8-bit weight-only blocks (MatMulNBits: 1.5e-3, but no faster than fp32; with int8 arithmetic,
accuracy level 4, 4.4e-3 at 1.2x on offline-50, 1.1e-2 at 1.7x on PaSST-S).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from tagger.onnx_backend import INPUT_NAME, OUTPUT_NAME
from tagger.options import FAST_LIMIT

if TYPE_CHECKING:
    from tagger.model import AudioTagger

FRONTEND_SCOPE = "/frontend/"  # node-name prefix of the front-end (never quantized)
LAYERS = ("qkv", "proj", "fc1", "fc2")
PLANS: tuple[tuple[str, frozenset[str]], ...] = (
    ("all", frozenset(LAYERS)),
    ("no-fc2", frozenset({"qkv", "proj", "fc1"})),
    ("qkv-fc1", frozenset({"qkv", "fc1"})),
)


SMOOTHING_ALPHA = 0.5  # how much of an activation channel's range moves into the weights


def smooth_activations(model: "AudioTagger", windows: np.ndarray, alpha: float = SMOOTHING_ALPHA) -> "AudioTagger":
    """A copy of ``model`` computing the same function in float32, with the per-channel range of
    the quantized layers' inputs moved into their weights (SmoothQuant, Xiao et al. 2023).

    Activations are quantized per tensor, so a few large channels (LayerNorm outliers) leave the
    others with few levels. For input channel j of a Linear layer, with a_j the largest |input|
    seen on ``windows`` and w_j the largest |weight| of that input, s_j = a_j^alpha / w_j^(1-alpha);
    the input is divided by s_j and the weight column multiplied by it. The division folds exactly
    into the LayerNorm before ``qkv`` and ``fc1`` (its gain and bias) and, for ``proj``, into the
    value rows of ``qkv`` (attention mixes tokens, never channels). ``fc2`` follows the GELU, where
    nothing can absorb it.
    """
    import copy

    import torch

    smoothed = copy.deepcopy(model).float().eval()
    ranges: dict = {}

    def record(module, args):
        seen = args[0].detach().abs().amax(dim=tuple(range(args[0].dim() - 1)))
        ranges[module] = torch.maximum(ranges[module], seen) if module in ranges else seen

    blocks = list(smoothed.passt.blocks)
    hooks = [layer.register_forward_pre_hook(record)
             for block in blocks for layer in (block.attn.qkv, block.attn.proj, block.mlp.fc1)]
    with torch.no_grad():
        for window in windows:
            smoothed(torch.from_numpy(window[None]))
        for hook in hooks:
            hook.remove()

        def scales(layer: torch.nn.Linear) -> torch.Tensor:
            weight_range = layer.weight.abs().amax(dim=0).clamp(min=1e-5)
            return (ranges[layer].clamp(min=1e-5) ** alpha / weight_range ** (1 - alpha)).clamp(min=1e-5)

        for block in blocks:
            for norm, layer in ((block.norm1, block.attn.qkv), (block.norm2, block.mlp.fc1)):
                s = scales(layer)
                norm.weight /= s
                norm.bias /= s
                layer.weight *= s
            qkv, proj = block.attn.qkv, block.attn.proj
            s = scales(proj)
            dim = proj.in_features
            qkv.weight[2 * dim:] /= s[:, None]
            qkv.bias[2 * dim:] /= s
            proj.weight *= s
    return smoothed


@dataclass(frozen=True)
class Int8Choice:
    plan: str  # a name of PLANS
    max_diff: float | None  # max |p_int8 - p_fp32| on the choice windows; None when not measured


def layer_of(node: onnx.NodeProto) -> str | None:
    """The Linear layer a weight MatMul belongs to (``/passt/blocks/blocks.3/mlp/fc2/MatMul`` -> fc2)."""
    parts = node.name.split("/")
    return parts[-2] if len(parts) >= 2 and parts[-2] in LAYERS else None


def plan_nodes(proto: onnx.ModelProto, layers: frozenset[str]) -> list[str]:
    """The weight MatMuls of the blocks' Linear layers named in ``layers``."""
    weights = {init.name for init in proto.graph.initializer}
    return [n.name for n in proto.graph.node
            if n.op_type == "MatMul" and n.input[1] in weights and not n.name.startswith(FRONTEND_SCOPE)
            and layer_of(n) in layers]


def quantize_nodes(source: Path, target: Path, nodes: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # the quantizer's advice to pre-process (not needed: dynamic)
    try:
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes)
    finally:
        logging.disable(logging.NOTSET)


def graph_probabilities(path: Path, windows: np.ndarray) -> np.ndarray:
    """Run a graph (not yet carrying tagger metadata) on the CPU, one window per call."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: w[None]})[0] for w in windows])


def quantize_int8(source: Path, target: Path, windows: np.ndarray | None = None,
                  expected: np.ndarray | None = None,
                  report: Callable[[str], None] = lambda message: None) -> Int8Choice:
    """Write the int8 variant of ``source`` to ``target``: the most quantized plan whose
    probabilities on ``windows`` stay within FAST_LIMIT of ``expected`` (the float32 model's), else
    the fastest plan. Without windows, every Linear layer is quantized (unmeasured)."""
    proto = onnx.load(str(source), load_external_data=False)
    if windows is None or expected is None:
        quantize_nodes(source, target, plan_nodes(proto, PLANS[0][1]))
        return Int8Choice(PLANS[0][0], None)
    errors = []
    for name, layers in PLANS:
        quantize_nodes(source, target, plan_nodes(proto, layers))
        error = float(np.abs(graph_probabilities(target, windows) - expected).max())
        report(f"int8 {name}: max difference {error:.1e}")
        if error <= FAST_LIMIT:
            return Int8Choice(name, error)
        errors.append(error)
    quantize_nodes(source, target, plan_nodes(proto, PLANS[0][1]))  # none within the limit: the fastest
    return Int8Choice(PLANS[0][0], errors[0])
