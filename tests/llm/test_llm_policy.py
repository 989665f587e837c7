"""Tiny Qwen3: save/load like a hub model, generation, hidden states and teacher-forced log-probs."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

from rlcore.errors import UserError  # noqa: E402
from rlcore.llm import (  # noqa: E402
    final_hidden_states,
    lm_head_weight,
    load_policy,
    position_ids_from_mask,
    tiny_qwen,
    token_logprobs,
)


@pytest.fixture(scope="module")
def policy():
    return load_policy(tiny_qwen(), dtype="float32", device="cpu")


def test_tiny_model_is_a_hub_style_checkpoint(policy, tmp_path):
    model, tok = policy
    path = tiny_qwen()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert (path / "tokenizer.json").is_file()
    assert tiny_qwen() == path  # cached by its arguments
    assert model.config.model_type == "qwen3" and model.config.tie_word_embeddings
    assert lm_head_weight(model).shape == (151936, 64)
    assert lm_head_weight(model).data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tok.pad_token_id == 151643 and tok.eos_token_id == 151645 and tok.pad_token_id != tok.eos_token_id
    assert set(model.generation_config.eos_token_id) == {151643, 151645}
    # a copy in another folder loads to the same weights
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, tok2 = load_policy(tmp_path, device="cpu")
    assert torch.equal(again.model.embed_tokens.weight, model.model.embed_tokens.weight)
    assert tok2("Hello world!")["input_ids"] == [9707, 1879, 0]


def test_different_seeds_give_different_weights():
    a, _ = load_policy(tiny_qwen(layers=1, seed=0), device="cpu")
    b, _ = load_policy(tiny_qwen(layers=1, seed=1), device="cpu")
    assert a.config.num_hidden_layers == 1
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, b.model.layers[0].mlp.up_proj.weight)


def test_generate_with_chat_template(policy):
    model, tok = policy
    text = tok.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True)
    batch = tok([text, "Hi"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # left padding
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)


def test_hidden_states_and_logprobs_match_the_full_forward(policy):
    model, tok = policy
    batch = tok(["a longer prompt with several tokens", "short"], return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        hidden = final_hidden_states(model, ids, mask)
        full = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
        lp = token_logprobs(model, ids, mask, temperature=0.7, chunk_size=3)
    assert hidden.shape == (*ids.shape, 64)
    torch.testing.assert_close(hidden @ lm_head_weight(model).T, full.logits, atol=1e-5, rtol=1e-5)
    want = (full.logits[:, :-1].double() / 0.7).log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    real = mask[:, 1:].bool()
    torch.testing.assert_close(lp.double()[real], want[real], atol=1e-5, rtol=1e-5)


def test_load_policy_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="save_pretrained"):
        load_policy(tmp_path / "missing")
    with pytest.raises(UserError, match="unknown dtype"):
        load_policy("tiny", dtype="float8")
