#!/usr/bin/env python3
"""Goldens for Kokoro's stages, from onnxruntime running the published int8
file `kokoro-v1.0.int8.onnx`.

The file's own values are added as graph outputs, so each stage can be
checked on onnxruntime's input. ALBERT: the embeddings after their
LayerNorm (`albert_embeddings`, T x 128), the projection to 768
(`albert_hidden_in`), the shared layer's output after its first and its
twelfth application (`albert_layer_1`, `albert_layer_12`), and
`bert_encoder`'s projection to 512 (`albert_bert_dur`). The text encoder:
its embedding (`text_embedding`, T x 512), the first and third
convolution blocks (`text_cnn_0`, `text_cnn_2`, 512 x T) and the
bidirectional LSTM's output (`text_lstm`, 512 x T). The duration
predictor: its first LSTM (`duration_lstm_0`, T x 512), the first
and second AdaLayerNorms (`duration_norm_1`, `duration_norm_3`), the encoder's output with the style
appended (`duration_encoded`, T x 640), the projection to 50 bins
(`duration_proj`) and the durations before rounding (`durations`,
divided by the speed 1). The F0 and energy predictor: its input, `d`
expanded by the durations (`prosody_en`, 640 x frames), the shared LSTM
(`prosody_shared`), the F0 branch's three AdaIN residual blocks
(`f0_block_0` … `_2`), and both projections (`f0`, `n`, 2 x frames).
The decoder's front: the aligned text features (`decoder_asr`, 512 x
frames), F0 and energy at the frame rate (`decoder_f0`, `decoder_n`) and
the last `decode` block (`decoder_out`, 512 x 2 frames, the generator's
input). The generator: the harmonic source (`gen_source`, 300 samples a
frame), the source's STFT as 11 magnitudes and 11 phases
(`gen_spectrum`) and `conv_post`'s output (`gen_post`), both kept to their
first 1,000 STFT frames, and the audio (`audio`). `style` is the voice row used. Each is written as raw
little-endian float32, row-major, beside `stages.json` (tokens and
shapes).

    python3 -m venv /tmp/kk && /tmp/kk/bin/pip install onnx onnxruntime==1.32.0 onnx==1.23.2 numpy
    /tmp/kk/bin/python tools/make_kokoro_stage_goldens.py \\
        ~/.cache/vivace/weights/kokoro-v1.0-int8/kokoro-v1.0.int8.onnx \\
        ~/.cache/vivace/weights/kokoro-js-1.2.1-voices/af_heart.bin \\
        crates/vivace/tests/fixtures/kokoro
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

LAYER = "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0"
OUTPUTS = {
    "albert_embeddings": "/encoder/bert/embeddings/LayerNorm/LayerNormalization_output_0",
    "albert_hidden_in": "/encoder/bert/encoder/embedding_hidden_mapping_in/Add_output_0",
    "albert_layer_1": f"{LAYER}/full_layer_layer_norm/LayerNormalization_output_0",
    "albert_layer_12": f"{LAYER}/full_layer_layer_norm_11/LayerNormalization_output_0",
    "albert_bert_dur": "/encoder/bert_encoder/Add_output_0",
    "text_embedding": "/encoder/text_encoder/embedding/Gather_output_0",
    "text_cnn_0": "/encoder/text_encoder/cnn.0/cnn.0.2/LeakyRelu_output_0",
    "text_cnn_2": "/encoder/text_encoder/cnn.2/cnn.0.2/LeakyRelu",
    "text_lstm": "/encoder/text_encoder/Transpose_2_output_0",
    "duration_lstm_0": "/encoder/predictor/text_encoder/lstms.0/Transpose_2_output_0",
    "duration_norm_1": "/encoder/predictor/text_encoder/lstms.1/Add_2_output_0",
    "duration_norm_3": "/encoder/predictor/text_encoder/lstms.3/Add_2_output_0",
    "duration_encoded": "/encoder/predictor/text_encoder/Concat_4_output_0",
    "duration_proj": "/encoder/predictor/duration_proj/linear_layer/Add_output_0",
    "durations": "/encoder/Div_output_0",
    "prosody_en": "/encoder/MatMul_output_0",
    "prosody_shared": "/encoder/shared/Reshape_output_0",
    "f0_block_0": "/encoder/F0.0/Div_2_output_0",
    "f0_block_1": "/encoder/F0.1/Div_4_output_0",
    "f0_block_2": "/encoder/F0.2/Div_2_output_0",
    "f0": "/encoder/F0_proj/Conv_output_0",
    "n": "/encoder/N_proj/Conv_output_0",
    "decoder_asr": "/encoder/MatMul_1_output_0",
    "decoder_f0": "/decoder/decoder/F0_conv/Conv_output_0",
    "decoder_n": "/decoder/decoder/N_conv/Conv_output_0",
    "decoder_out": "/decoder/decoder/decode.3/Div_4_output_0",
    "gen_source": "/decoder/decoder/generator/m_source/l_tanh/Tanh_output_0",
    "gen_spectrum": "/decoder/decoder/generator/Concat_3_output_0",
    "gen_post": "/decoder/decoder/generator/conv_post/Conv_output_0",
    "audio": "audio",
}
# Kept to their first frames, to keep the files small.
PREFIX = {"gen_spectrum": 1000, "gen_post": 1000}

# The 15 ids docs/KOKORO.md measured the float rendering on (Kokoro's
# vocabulary, the pad 0 at both ends).
TOKENS = [0, 50, 83, 54, 156, 57, 135, 16, 65, 156, 87, 158, 54, 46, 0]


def main():
    model_path, voice_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    model = onnx.load(model_path)
    have = {o.name for o in model.graph.output}
    for name in OUTPUTS.values():
        if name not in have:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    voice = np.fromfile(voice_path, dtype="<f4").reshape(-1, 1, 256)
    tokens = np.array([TOKENS], dtype=np.int64)
    style = voice[len(TOKENS) - 2]
    names = list(OUTPUTS.values())
    values = session.run(names, {"tokens": tokens, "style": style, "speed": np.array([1.0], dtype=np.float32)})
    style.astype("<f4").tofile(os.path.join(out, "style.f32"))
    shapes = {}
    for key, value in zip(OUTPUTS, values):
        value = np.asarray(value, dtype="<f4")
        if key in PREFIX:
            value = np.ascontiguousarray(value[..., : PREFIX[key]])
        value.tofile(os.path.join(out, f"{key}.f32"))
        shapes[key] = list(value.shape)
    with open(os.path.join(out, "stages.json"), "w") as f:
        json.dump({"reference": f"onnxruntime {ort.__version__}, kokoro-v1.0.int8.onnx, 1 thread",
                   "tokens": TOKENS, "shapes": shapes}, f, indent=1)
    print(shapes)


if __name__ == "__main__":
    main()
