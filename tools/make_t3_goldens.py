#!/usr/bin/env python3
"""Goldens for Chatterbox's T3 (text tokens + speaker conditioning -> speech
tokens), from the reference implementation `chatterbox-tts==0.1.7` on random
weights.

The model is the reference's own `T3` class with a small Llama backbone
(2 layers, 64 wide, one head of 64, MLP 128) and short position tables, so the
fixture stays small. The perceiver resampler hard-codes a width of 1024; the
script builds it at the backbone's width instead (the only patch to the
reference's classes). Every parameter is perturbed (norm gains too) and then
rounded to bf16, and the weights are saved in bf16 under the names the
published `t3_cfg.safetensors` uses; the reference runs on the same rounded
values in f32, so the fixture holds exactly the weights both sides use.

Decoding is the reference's own `T3.inference` loop with `torch.multinomial`
replaced by the argmax of the processed probabilities: greedy decoding after
guidance, the repetition penalty, temperature, min-p and top-p, which is what
`vivace say --temperature 0` does. The speech head's output is recorded at
every step (both CFG rows) through a forward hook.

The text goes through the reference's `punc_norm` and `EnTokenizer` with the
real English `tokenizer.json` (from the sdist of `chatterbox-vllm==0.2.1`,
MIT; `pip download --no-deps --no-binary :all: chatterbox-vllm==0.2.1`).

Setup: the venv of `tools/make_s3gen_goldens.py`.

Run from the repository root:

    /tmp/cbenv/bin/python tools/make_t3_goldens.py --tokenizer PATH/tokenizer.json
    /tmp/cbenv/bin/python tools/make_t3_goldens.py --real-size --out /tmp/t3-real \\
        --tokenizer PATH/tokenizer.json      # a 2.1 GB random t3_cfg.safetensors
    /tmp/cbenv/bin/python tools/make_t3_goldens.py --multilingual \\
        --tokenizer PATH/grapheme_mtl_merged_expanded_v1.json

`--turbo --gpt2 DIR` makes Turbo's T3 (`tts_turbo.py`'s hyperparameters: a
GPT-2 backbone, here 2 layers of 64 with 600 positions, no T3 position
tables, no perceiver, no emotion input, 375 prompt tokens) with a text
vocabulary cut to 2048, and decodes with `inference_turbo` on sentences
whose GPT-2 token ids all fall below 2048. DIR holds GPT-2's `vocab.json`
and `merges.txt` (MIT; from the sdist of `openai-whisper==20230124`,
`whisper/assets/gpt2/`), copied into the fixture. Greedy there means
temperature 1 (no temperature warper) and argmax after top-k 1000, top-p
0.95 and the repetition penalty 1.2, which is what `--temperature 0` does.

`--multilingual` makes the 23-language T3 (text vocabulary 2454) at the same
small size and decodes sentences in several languages through the
reference's `MTLTokenizer` (pykakasi 2.3.0 installed for Japanese; Chinese
without the Hub's `Cangjie5_TC.json` and without spacy-pkuseg, so its
characters pass unconverted, as Vivace does without the table) and its
`AlignmentStreamAnalyzer`. The small backbone has 2 layers of one head, so
the analyzer's heads `LLAMA_ALIGNED_HEADS` are taken modulo those sizes, as
`vivace_models::chatterbox::t3::aligned_heads` does for checkpoints that
are not the published size.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from pathlib import Path

import sys

import numpy as np
import torch
from safetensors.torch import save_file

import chatterbox.models.t3.modules.cond_enc as cond_enc
from chatterbox.models.t3 import t3 as t3_module
from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS, LLAMA_520M_CONFIG_DICT
from chatterbox.models.t3.modules.cond_enc import T3Cond
from chatterbox.models.t3.modules.perceiver import Perceiver
from chatterbox.models.t3.modules.t3_config import T3Config
from chatterbox.models.tokenizers import EnTokenizer
from chatterbox.tts import punc_norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from make_s3gen_goldens import SMALL as S3GEN_SMALL, Model as S3GenModel, perturb, speech_like_f0  # noqa: E402
from chatterbox.models.s3gen import hifigan as hift_module  # noqa: E402
FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "t3"
MTL_FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "t3_mtl"

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=1, num_key_value_heads=1, head_dim=64)
SMALL_MAX_TEXT = 62
SMALL_MAX_SPEECH = 150  # the prompt's 150 tokens take speech positions too
SMALL_SPEECH_VOCAB = 6563  # the 6561 S3 codes, start and stop (real: 8194, padded)

# (text, cfg_weight, exaggeration, max_new_tokens)
CASES = [
    ("Hello from Vivace.", 0.5, 0.5, 40),
    ("the quick brown fox... jumps over the lazy dog; twice", 0.3, 0.7, 48),
    ("Wait — what? “Quoted” text, 42 times!", 0.5, 0.2, 32),
]


# (text, language, cfg_weight, exaggeration, max_new_tokens)
MTL_CASES = [
    ("Bonjour, je m'appelle Vivace et je parle français.", "fr", 0.5, 0.5, 60),
    ("Guten Morgen! Wie geht es dir heute?", "de", 0.5, 0.5, 60),
    ("¿Dónde está la estación de tren?", "es", 0.3, 0.7, 60),
    ("안녕하세요, 만나서 반갑습니다.", "ko", 0.5, 0.5, 60),
    ("नमस्ते, आप कैसे हैं?", "hi", 0.5, 0.5, 140),
    ("مرحبا بالعالم", "ar", 0.5, 0.5, 140),
    ("Hello from the multilingual model.", "en", 0.5, 0.5, 140),
    ("日本語を話します。東京へ行きましょう。", "ja", 0.5, 0.5, 60),
    ("你好，世界。今天天气很好。", "zh", 0.5, 0.5, 60),
]
SMALL_MTL_MAX_TEXT = 160
TURBO_FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "t3_turbo"
SMALL_TURBO_TEXT_VOCAB = 2048
SMALL_TURBO_POSITIONS = 600
# (text, max_gen_len): the reference draws 1 + max_gen_len tokens at most.
TURBO_CASES = [
    ("It is what it is, and we can do it all the time.", 40),
    ("it was not so, and he is on the way out", 60),
    ("We have to go... all of us!", 30),
]


def build(real: bool, multilingual: bool = False) -> T3:
    hp = T3Config.multilingual() if multilingual else T3Config.english_only()
    if not real:
        LLAMA_CONFIGS["Llama_small"] = dict(LLAMA_520M_CONFIG_DICT, **SMALL)
        hp.llama_config_name = "Llama_small"
        hp.max_text_tokens = SMALL_MTL_MAX_TEXT if multilingual else SMALL_MAX_TEXT
        hp.max_speech_tokens = SMALL_MAX_SPEECH
        hp.speech_tokens_dict_size = SMALL_SPEECH_VOCAB
        width = SMALL["hidden_size"]
        # The reference hard-codes 1024; at real size this is the same.
        cond_enc.Perceiver = functools.partial(
            Perceiver, pre_attention_query_size=width, embedding_dim=width)
    model = t3_module.T3(hp)
    model.eval()
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "pos_emb" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif not real:
                # Larger than the default init, so the small net's logits
                # are far from uniform and greedy decoding has clear winners.
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p.shape[-1]) ** 0.5)
        if not real:
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return model


def conditioning(hp: T3Config, exaggeration: float) -> T3Cond:
    g = torch.Generator().manual_seed(99)
    speaker = torch.randn(1, 256, generator=g)
    speaker = speaker / speaker.norm()
    prompt = torch.randint(0, 6561, (1, hp.speech_cond_prompt_len), generator=g)
    return T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt,
                  emotion_adv=exaggeration * torch.ones(1, 1, 1))


def greedy(model: T3, cond: T3Cond, text_ids: list[int], cfg: float, max_new: int,
           repetition_penalty: float = 1.2):
    hp = model.hp
    tokens = torch.tensor([text_ids], dtype=torch.long)
    tokens = torch.cat([tokens, tokens])
    tokens = torch.nn.functional.pad(tokens, (1, 0), value=hp.start_text_token)
    tokens = torch.nn.functional.pad(tokens, (0, 1), value=hp.stop_text_token)
    logits = []
    hook = model.speech_head.register_forward_hook(
        lambda _m, _i, out: logits.append(out[:, -1, :].detach().clone()))
    original = torch.multinomial
    torch.multinomial = lambda probs, num_samples: probs.argmax(-1, keepdim=True)
    try:
        out = model.inference(t3_cond=cond, text_tokens=tokens, max_new_tokens=max_new,
                              temperature=0.8, cfg_weight=cfg,
                              repetition_penalty=repetition_penalty,
                              min_p=0.05, top_p=1.0)
    finally:
        torch.multinomial = original
        hook.remove()
    return out[0].tolist(), torch.stack(logits)


PROMPT_TOKENS = 12


def s3gen_pipeline(out: Path, speech: list[int], s3gen_seed: int = 7):
    """A small S3Gen that takes every S3 code (vocabulary 6561), saved with
    its sizes as `s3gen_config.json`, and the whole voice's audio: T3's
    tokens (`drop_invalid_tokens`, codes below 6561, as `tts.py`) through
    the flow with its noise injected and the vocoder's noise off."""
    cfg = dict(S3GEN_SMALL, vocab_size=6561)
    gen = torch.Generator().manual_seed(s3gen_seed)
    model = S3GenModel(cfg, meanflow=False).eval()
    perturb(model, gen)
    prompt_token = torch.randint(0, 6561, (1, PROMPT_TOKENS), generator=gen)
    prompt_feat = torch.randn(1, 2 * PROMPT_TOKENS, 80, generator=gen) * 2.0 - 6.0
    embedding = torch.randn(1, 192, generator=gen)
    tokens = torch.tensor([[t for t in speech if t < 6561]])
    frames = 2 * (PROMPT_TOKENS + tokens.shape[1])
    noise = torch.randn(1, 80, frames, generator=gen)
    real_randn_like = torch.randn_like
    real_sample = hift_module.Uniform.sample
    with torch.inference_mode():
        def flow():
            torch.randn_like = lambda x, **kw: noise.clone().to(x.dtype)
            try:
                mel, _ = model.flow.inference(
                    token=tokens, token_len=torch.tensor([tokens.shape[1]]),
                    prompt_token=prompt_token, prompt_token_len=torch.tensor([PROMPT_TOKENS]),
                    prompt_feat=prompt_feat, prompt_feat_len=None, embedding=embedding,
                    finalize=True, n_timesteps=10)
            finally:
                torch.randn_like = real_randn_like
            return mel
        mel = flow()
        speech_like_f0(model.mel2wav.f0_predictor, mel)
        torch.randn_like = lambda x, **kw: torch.zeros_like(x)
        hift_module.Uniform.sample = lambda self, sample_shape=torch.Size(): torch.zeros(sample_shape)
        try:
            wav, _ = model.mel2wav.inference(speech_feat=mel, cache_source=torch.zeros(1, 1, 0))
        finally:
            torch.randn_like = real_randn_like
            hift_module.Uniform.sample = real_sample
        wav[:, : len(model.trim_fade)] *= model.trim_fade
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "s3gen.safetensors"))
    (out / "s3gen_config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    np.save(out / "flow_noise.npy", noise[0].numpy().astype(np.float32))
    gen_part = {"prompt_token": prompt_token.to(torch.int64),
                "prompt_token_len": torch.tensor([PROMPT_TOKENS]),
                "prompt_feat": prompt_feat, "prompt_feat_len": None, "embedding": embedding}
    return gen_part, wav[0]


VE_FIXTURE = ROOT / "crates" / "vivace" / "tests" / "fixtures" / "chatterbox_ve"


def ve_goldens(out: Path) -> None:
    """Chatterbox's voice encoder (`embeds_from_wavs`) at a small width
    (64) on a 16 kHz signal with quiet edges to trim: the trimmed span, the
    40-band mel and the speaker embedding."""
    import librosa
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.models.voice_encoder.config import VoiceEncConfig
    from chatterbox.models.voice_encoder.melspec import melspectrogram

    class Small(VoiceEncConfig):
        ve_hidden_size = 64
        speaker_embed_size = 64

    torch.manual_seed(5)
    ve = VoiceEncoder(Small()).eval()
    with torch.no_grad():
        ve.proj.bias.add_(0.3)  # keep most ReLU outputs alive
    rng = np.random.default_rng(3)
    sr = 16000
    t = np.arange(int(3.1 * sr)) / sr
    voiced = 0.3 * np.sin(2 * np.pi * (140 * t + 40 * t**2)) + 0.1 * np.sin(2 * np.pi * 610 * t)
    voiced = voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
    wav = np.concatenate([1e-4 * rng.standard_normal(int(0.45 * sr)), voiced,
                          3e-4 * rng.standard_normal(int(0.6 * sr))]).astype(np.float32)
    trimmed, (start, end) = librosa.effects.trim(wav, top_db=20)
    mel = melspectrogram(trimmed, ve.hp).T
    embedding = ve.embeds_from_wavs([wav], sample_rate=sr)[0]
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in ve.state_dict().items()}, str(out / "ve.safetensors"))
    # The multilingual checkpoint publishes the same weights as `ve.pt`.
    torch.save(ve.state_dict(), out / "ve.pt")
    save_file({
        "wav": torch.from_numpy(wav),
        "trim": torch.tensor([start, end], dtype=torch.int64),
        "mel": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)),
        "embedding": torch.from_numpy(np.ascontiguousarray(embedding, dtype=np.float32)),
    }, str(out / "goldens.safetensors"))
    print(f"voice encoder: trimmed to {start}..{end} of {wav.size}, mel {mel.shape}")


def multilingual(tokenizer_path: str, out: Path) -> None:
    """The 23-language T3's goldens: greedy tokens and logits per language."""
    from chatterbox.models.t3.inference import alignment_stream_analyzer as asa
    from chatterbox.models.tokenizers import MTLTokenizer
    from chatterbox.mtl_tts import punc_norm as mtl_punc_norm

    model = build(False, multilingual=True)
    layers, heads = SMALL["num_hidden_layers"], SMALL["num_attention_heads"]
    asa.LLAMA_ALIGNED_HEADS = [(l % layers, h % heads) for l, h in asa.LLAMA_ALIGNED_HEADS]
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous().to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_file(state, str(out / "t3_mtl23ls_v2.safetensors"))
    shutil.copy(tokenizer_path, out / "grapheme_mtl_merged_expanded_v1.json")
    tokenizer = MTLTokenizer(str(out / "grapheme_mtl_merged_expanded_v1.json"))
    # S3Gen's part is the English fixture's, so that the folder with that
    # fixture's s3gen.safetensors is a whole multilingual voice.
    gen_part = torch.load(FIXTURE / "conds.pt", weights_only=True)["gen"]
    torch.save({"t3": dict(conditioning(model.hp, 0.5).__dict__), "gen": gen_part},
               out / "conds.pt")
    goldens: dict[str, torch.Tensor] = {}
    cases = []
    for i, (text, lang, cfg, exaggeration, max_new) in enumerate(MTL_CASES):
        cond = conditioning(model.hp, exaggeration)
        normalized = mtl_punc_norm(text)
        ids = tokenizer.encode(normalized, language_id=lang)
        speech, logits = greedy(model, cond, ids, cfg, max_new, repetition_penalty=2.0)
        goldens[f"case{i}.text_ids"] = torch.tensor(ids, dtype=torch.int64)
        goldens[f"case{i}.speech_tokens"] = torch.tensor(speech, dtype=torch.int64)
        steps = sorted({0, 1, len(speech) - 1})
        for s in steps:
            goldens[f"case{i}.logits{s}"] = logits[s].contiguous()
        cases.append(dict(text=text, language=lang, normalized=normalized, cfg_weight=cfg,
                          exaggeration=exaggeration, max_new_tokens=max_new,
                          logit_steps=steps, tokens=len(speech)))
        print(f"{lang}: {normalized!r} -> {len(ids)} text ids, {len(speech)} speech tokens: {speech[:12]}")
    save_file(goldens, str(out / "goldens.safetensors"))
    (out / "cases.json").write_text(json.dumps(dict(
        cases=cases, temperature=0.8, repetition_penalty=2.0, min_p=0.05, top_p=1.0,
        max_text_tokens=SMALL_MTL_MAX_TEXT, max_speech_tokens=SMALL_MAX_SPEECH,
        aligned_heads=asa.LLAMA_ALIGNED_HEADS), indent=1, ensure_ascii=False) + "\n")


def turbo(gpt2_dir: Path, out: Path, real: bool = False) -> None:
    """Turbo's T3 goldens: greedy tokens and logits per sentence; with
    `real`, only a real-size random `t3_turbo_v1.safetensors` and `conds.pt`
    (for the benchmarks)."""
    from transformers import AutoTokenizer
    from chatterbox.models.t3.llama_configs import GPT2_MEDIUM_CONFIG
    from chatterbox.tts_turbo import punc_norm as turbo_punc_norm

    LLAMA_CONFIGS["GPT2_small"] = dict(
        GPT2_MEDIUM_CONFIG, n_embd=64, hidden_size=64, n_head=1, n_layer=2,
        n_positions=SMALL_TURBO_POSITIONS, n_ctx=SMALL_TURBO_POSITIONS)
    hp = T3Config(text_tokens_dict_size=50276 if real else SMALL_TURBO_TEXT_VOCAB)
    hp.llama_config_name = "GPT2_medium" if real else "GPT2_small"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    model = t3_module.T3(hp)
    del model.tfmr.wte
    model.eval()
    g = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "wpe" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif not real:
                fan_in = p.shape[0] if ".c_" in name else p.shape[-1]  # Conv1D is [in, out]
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if not real:
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
    out.mkdir(parents=True, exist_ok=True)
    if real:
        state = {k: v.contiguous() for k, v in model.state_dict().items()
                 if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
        save_file(state, str(out / "t3_turbo_v1.safetensors"))
        gcond = torch.Generator().manual_seed(98)
        speaker = torch.randn(1, 256, generator=gcond)
        cond = T3Cond(speaker_emb=speaker / speaker.norm(),
                      cond_prompt_speech_tokens=torch.randint(0, 6561, (1, 375), generator=gcond),
                      emotion_adv=0.5 * torch.ones(1, 1, 1))
        torch.save({"t3": dict(cond.__dict__), "gen": {}}, out / "conds.pt")
        print(f"wrote {out}/t3_turbo_v1.safetensors and conds.pt")
        return
    state = {k: v.contiguous().to(torch.bfloat16) for k, v in model.state_dict().items()
             if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    save_file(state, str(out / "t3_turbo_v1.safetensors"))
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(gpt2_dir / f, out / f)
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)

    gcond = torch.Generator().manual_seed(98)
    speaker = torch.randn(1, 256, generator=gcond)
    speaker = speaker / speaker.norm()
    prompt = torch.randint(0, 6561, (1, 375), generator=gcond)
    cond = T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt,
                  emotion_adv=0.5 * torch.ones(1, 1, 1))
    gen_part = torch.load(FIXTURE / "conds.pt", weights_only=True)["gen"]
    torch.save({"t3": dict(cond.__dict__), "gen": gen_part}, out / "conds.pt")

    goldens: dict[str, torch.Tensor] = {}
    cases = []
    for i, (text, max_gen) in enumerate(TURBO_CASES):
        normalized = turbo_punc_norm(text)
        ids = tokenizer(normalized).input_ids
        assert max(ids) < SMALL_TURBO_TEXT_VOCAB, (text, ids)
        logits = []
        hook = model.speech_head.register_forward_hook(
            lambda _m, _i, o: logits.append(o[:, -1, :].detach().clone()))
        original = torch.multinomial
        torch.multinomial = lambda probs, num_samples: probs.argmax(-1, keepdim=True)
        try:
            with torch.inference_mode():
                c = T3Cond(**{k: v for k, v in cond.__dict__.items()})
                c.cond_prompt_speech_emb = None
                speech = model.inference_turbo(c, torch.tensor([ids]), temperature=1.0, top_k=1000,
                                               top_p=0.95, repetition_penalty=1.2,
                                               max_gen_len=max_gen)[0].tolist()
        finally:
            torch.multinomial = original
            hook.remove()
        logits = torch.cat(logits)
        goldens[f"case{i}.text_ids"] = torch.tensor(ids, dtype=torch.int64)
        goldens[f"case{i}.speech_tokens"] = torch.tensor(speech, dtype=torch.int64)
        steps = sorted({0, 1, len(logits) - 1})
        for s_ in steps:
            goldens[f"case{i}.logits{s_}"] = logits[s_].unsqueeze(0).contiguous()
        cases.append(dict(text=text, normalized=normalized, cfg_weight=0.0, exaggeration=0.5,
                          max_new_tokens=max_gen + 1, logit_steps=steps, tokens=len(speech)))
        print(f"turbo case {i}: {normalized!r} -> {ids} -> {len(speech)} speech tokens: {speech[:10]}")
    # The tokenizer on its own, with two added tokens as Turbo adds its
    # own after GPT-2's 50257 (added_tokens.json, read by AutoTokenizer).
    added = {"[laugh]": 50257, "[sigh]": 50258}
    (out / "added_tokens.json").write_text(json.dumps(added) + "\n")
    full = AutoTokenizer.from_pretrained(out)
    texts = [
        "Hello, world! It's 5 o'clock; we've got 3.50 dollars...",
        "  Multiple   spaces\tand\nnewlines  ",
        "Café naïve résumé — “quoted” ‘text’",
        "日本語とEnglish、混ざった文。 😀 emoji",
        "Numbers: 1234567, 3.14159, -42, 1e9",
        "I [laugh] then [sigh], then <|endoftext|> ends.",
        "don't won't can't I'm you're they'll",
        "UPPER lower MiXeD CamelCase snake_case kebab-case",
        "",
        "a",
    ]
    token_cases = []
    for text in texts:
        normalized = turbo_punc_norm(text)
        token_cases.append(dict(text=text, normalized=normalized,
                                ids=full(normalized).input_ids))
    (out / "tokenizer_cases.json").write_text(
        json.dumps(token_cases, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(token_cases)} tokenizer cases, {len(full)} tokens with the added ones")
    save_file(goldens, str(out / "goldens.safetensors"))
    (out / "cases.json").write_text(json.dumps(dict(
        cases=cases, temperature=1.0, repetition_penalty=1.2, min_p=0.0, top_p=0.95, top_k=1000,
        positions=SMALL_TURBO_POSITIONS), indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer",
                    help="the real tokenizer.json (English) or grapheme_mtl_merged_expanded_v1.json")
    ap.add_argument("--real-size", action="store_true")
    ap.add_argument("--multilingual", action="store_true")
    ap.add_argument("--turbo", action="store_true")
    ap.add_argument("--gpt2", type=Path, help="GPT-2's vocab.json and merges.txt (for --turbo)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--ve-out", type=Path, default=VE_FIXTURE)
    args = ap.parse_args()
    if args.turbo:
        turbo(args.gpt2, args.out or TURBO_FIXTURE, real=args.real_size)
        return
    if args.multilingual:
        multilingual(args.tokenizer, args.out or MTL_FIXTURE)
        return
    args.out = args.out or FIXTURE
    args.out.mkdir(parents=True, exist_ok=True)

    model = build(args.real_size)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if not args.real_size:
        state = {k: v.to(torch.bfloat16) for k, v in state.items()}
    save_file(state, str(args.out / "t3_cfg.safetensors"))
    if args.real_size:
        cond = conditioning(model.hp, 0.5)
        torch.save({"t3": dict(cond.__dict__), "gen": {}}, args.out / "conds.pt")
        print(f"wrote {args.out}/t3_cfg.safetensors and conds.pt")
        return
    ve_goldens(args.ve_out)
    shutil.copy(args.tokenizer, args.out / "tokenizer.json")
    tokenizer = EnTokenizer(args.tokenizer)

    goldens: dict[str, torch.Tensor] = {}
    cases = []
    for i, (text, cfg, exaggeration, max_new) in enumerate(CASES):
        cond = conditioning(model.hp, exaggeration)
        if i == 0:
            t3_part = dict(cond.__dict__)
            with torch.inference_mode():
                goldens["cond_embeds"] = model.prepare_conditioning(
                    conditioning(model.hp, exaggeration))[0].contiguous()
            goldens["speaker_emb"] = cond.speaker_emb[0].contiguous()
            goldens["prompt_tokens"] = cond.cond_prompt_speech_tokens[0].to(torch.int64)
        normalized = punc_norm(text)
        ids = tokenizer.encode(normalized)
        speech, logits = greedy(model, cond, ids, cfg, max_new)
        goldens[f"case{i}.text_ids"] = torch.tensor(ids, dtype=torch.int64)
        goldens[f"case{i}.speech_tokens"] = torch.tensor(speech, dtype=torch.int64)
        # Every step's logits would be MBs: the first three, and the last one
        # a token was drawn from (the loop runs one more forward after it).
        steps = sorted({0, 1, 2, len(speech) - 1})
        for s in steps:
            goldens[f"case{i}.logits{s}"] = logits[s].contiguous()
        cases.append(dict(text=text, normalized=normalized, cfg_weight=cfg,
                          exaggeration=exaggeration, max_new_tokens=max_new,
                          logit_steps=steps, tokens=len(speech)))
        print(f"case {i}: {normalized!r} -> {len(ids)} text ids, {len(speech)} speech tokens")
        if i == 0:
            gen_part, wav = s3gen_pipeline(args.out, speech)
            torch.save({"t3": t3_part, "gen": gen_part}, args.out / "conds.pt")
            goldens["case0.wav"] = wav.contiguous()
            print(f"case 0 through S3Gen: {wav.shape[-1]} samples")
    save_file(goldens, str(args.out / "goldens.safetensors"))
    (args.out / "cases.json").write_text(json.dumps(dict(
        cases=cases, temperature=0.8, repetition_penalty=1.2, min_p=0.05, top_p=1.0,
        max_text_tokens=SMALL_MAX_TEXT, max_speech_tokens=SMALL_MAX_SPEECH), indent=1) + "\n")


if __name__ == "__main__":
    main()
