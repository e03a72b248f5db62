#!/usr/bin/env python3
"""Goldens for Kokoro's int8 weights read back to float.

For a few quantized weights of `kokoro-v1.0.int8.onnx` (one per kind of
reading node: MatMulInteger, ConvInteger, the two DynamicQuantizeLSTM
inputs, a Gather'd embedding), numpy dequantizes them as onnxruntime's
operators define it — `(q - zero_point) * scale`, the zero point taken from
the node's input, per tensor or along the operator's axis — and the goldens
keep each weight's dims, the float64 sum of its values and 64 values at
evenly spaced flat indices.

    /tmp/thenv/bin/pip install onnx numpy
    /tmp/thenv/bin/python tools/make_kokoro_weight_goldens.py \\
        ~/.cache/vivace/weights/kokoro-v1.0-int8/kokoro-v1.0.int8.onnx \\
        crates/vivace/tests/fixtures/kokoro/weights.json
"""

import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper

WEIGHTS = {
    # name without _quantized: (op that reads it, slot)
    "decoder.decoder.generator.resblocks.4.adain2.2.fc.weight": None,
    "onnx::LSTM_6930": None,
    "onnx::LSTM_6931": None,
    "encoder.bert.embeddings.word_embeddings.weight": None,
}


def main():
    model = onnx.load(sys.argv[1])
    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    readers = {}
    for node in g.node:
        for slot, name in enumerate(node.input):
            readers.setdefault(name, (node, slot))
    # The first MatMulInteger and ConvInteger weights in graph order too.
    first = [
        next(n.input[1] for n in g.node if n.op_type == op and n.input[1][: -len("_quantized")] not in WEIGHTS)
        for op in ("MatMulInteger", "ConvInteger")
    ]
    names = list(WEIGHTS) + [f[: -len("_quantized")] for f in first]
    out = []
    for base in names:
        q = init[base + "_quantized"].astype(np.float32)
        scale = init[base + "_scale"].astype(np.float32)
        node, slot = readers[base + "_quantized"]
        if node.op_type in ("MatMulInteger", "ConvInteger"):
            zp_name, axis = node.input[3], 1 if node.op_type == "MatMulInteger" else 0
        elif node.op_type == "DynamicQuantizeLSTM":
            zp_name, axis = node.input[9 if slot == 1 else 11], 0
        else:  # Gather, then DequantizeLinear
            dq, _ = readers[node.output[0]]
            zp_name, axis = dq.input[2], 0
        zp = init[zp_name].astype(np.float32)
        if scale.size == 1:
            w = (q - zp.reshape(())) * scale.reshape(())
        else:
            shape = [1] * q.ndim
            shape[axis] = -1
            w = (q - zp.reshape(shape)) * scale.reshape(shape)
        w = w.astype(np.float32)
        flat = w.ravel()
        idx = np.linspace(0, flat.size - 1, 64).astype(np.int64)
        out.append(
            {
                "name": base,
                "reader": node.op_type,
                "dims": list(q.shape),
                "sum": float(flat.astype(np.float64).sum()),
                "indices": idx.tolist(),
                "values": flat[idx].tolist(),
            }
        )
        print(base, node.op_type, q.shape, float(flat.astype(np.float64).sum()))
    with open(sys.argv[2], "w") as f:
        json.dump({"model_sha256": "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb", "weights": out}, f, indent=1)


if __name__ == "__main__":
    main()
