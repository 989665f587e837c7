"""The HF rollout engine: seeded determinism, log-probs equal to a teacher-forced pass, stops, weight sync."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

from rlcore.errors import ConfigError  # noqa: E402
from rlcore.llm import final_hidden_states, load_policy, tiny_qwen, token_logprobs  # noqa: E402
from rlcore.rollout import SamplingParams, make_engine  # noqa: E402
from rlcore.rollout.hf_engine import HFEngine  # noqa: E402


@pytest.fixture(scope="module")
def policy():
    return load_policy(tiny_qwen(), device="cpu")


@pytest.fixture(scope="module")
def engine(policy):
    return HFEngine(*policy, batch_size=3)


PROMPTS = ["What is 2 + 3?", "Hi", "A much longer prompt, so that the batch needs left padding."]


def test_shapes_and_determinism_by_seed(engine):
    params = SamplingParams(n=2, max_new_tokens=6, seed=7)
    a = engine.generate(PROMPTS, params)
    b = engine.generate(PROMPTS, params)
    c = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=6, seed=8))
    assert [len(g) for g in a] == [2, 2, 2]
    flat = [x for g in a for x in g]
    assert all(len(x.token_ids) == len(x.logprobs) <= 6 and x.finish_reason in ("stop", "length") for x in flat)
    assert [x.token_ids for g in a for x in g] == [x.token_ids for g in b for x in g]
    assert [x.logprobs for g in a for x in g] == [x.logprobs for g in b for x in g]
    assert [x.token_ids for g in a for x in g] != [x.token_ids for g in c for x in g]
    assert a[1][0].prompt_token_ids == engine.tokenizer("Hi")["input_ids"] and a[1][0].prompt_index == 1


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_logprobs_equal_teacher_forced_pass(engine, temperature):
    groups = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8, temperature=temperature, seed=3))
    for c in (x for g in groups for x in g):
        ids = torch.tensor([c.prompt_token_ids + c.token_ids])
        with torch.no_grad():
            ref = token_logprobs(engine.model, ids, torch.ones_like(ids), temperature=temperature)
        torch.testing.assert_close(torch.tensor(c.logprobs), ref[0, len(c.prompt_token_ids) - 1:],
                                   atol=1e-4, rtol=1e-4)


def test_sampling_frequencies_match_the_distribution(engine):
    prompt = engine.tokenizer("Hi")["input_ids"]
    with torch.no_grad():
        logits = engine.model(torch.tensor([prompt])).logits[0, -1].double() / 0.02  # skewed: 0.55 / 0.19 / 0.15 / 0.11
    top = logits.topk(4)
    probs = top.values.softmax(-1)
    wide = HFEngine(engine.model, engine.tokenizer, batch_size=200)
    draws = wide.generate([prompt], SamplingParams(n=800, max_new_tokens=1, temperature=0.02, top_k=4, seed=5))[0]
    counts = torch.tensor([sum(c.token_ids[0] == t for c in draws) for t in top.indices.tolist()], dtype=float)
    assert counts.sum() == 800
    sigma = (800 * probs * (1 - probs)).sqrt()
    assert ((counts - 800 * probs).abs() <= 4 * sigma + 1).all(), (counts, 800 * probs)
    for c in draws[:20]:  # reported log-probs are those of the renormalised top-4 distribution
        assert c.logprobs[0] == pytest.approx(probs[top.indices.tolist().index(c.token_ids[0])].log().item(), abs=1e-5)


def test_truncation_is_in_the_logprobs(engine):
    # top-k = 1 samples the arg-max with probability 1 under the truncated distribution: log-prob 0
    c = engine.generate(["Hi"], SamplingParams(max_new_tokens=6, top_k=1, seed=0))[0][0]
    greedy = engine.generate(["Hi"], SamplingParams(max_new_tokens=6, temperature=0))[0][0]
    assert c.token_ids == greedy.token_ids and c.logprobs == [0.0] * len(c.token_ids)
    nucleus = engine.generate(["Hi"], SamplingParams(max_new_tokens=6, top_p=0.5, seed=0))[0][0]
    full = engine.generate(["Hi"], SamplingParams(max_new_tokens=6, seed=0))[0][0]
    assert min(nucleus.logprobs) > max(full.logprobs)  # renormalised over a small nucleus


def test_eos_stop_and_stop_strings(policy, engine):
    model, tok = copy.deepcopy(policy[0]), policy[1]
    batch = tok(["Hi"], return_tensors="pt")
    with torch.no_grad():  # an untied head whose only non-zero row, <|im_end|>, points along the hidden state
        h = final_hidden_states(model, batch["input_ids"], batch["attention_mask"])[0, -1]
        model.lm_head = torch.nn.Linear(64, 151936, bias=False)
        model.lm_head.weight.zero_()
        model.lm_head.weight[151645] = 100 * h / h.norm()
    eng = HFEngine(model, tok)
    out = eng.generate(["Hi"], SamplingParams(n=2, max_new_tokens=5, seed=0))[0]
    assert all(c.finish_reason == "stop" and c.token_ids == [151645] and c.text == "" for c in out)
    text = engine.generate(["Hi"], SamplingParams(temperature=0, max_new_tokens=8))[0][0].text
    stop = text[len(text) // 2:][:3] or text
    stopped = engine.generate(["Hi"], SamplingParams(temperature=0, max_new_tokens=8, stop=(stop,)))[0][0]
    assert stopped.finish_reason == "stop" and stop in stopped.text and len(stopped.token_ids) <= 8


def test_update_weights_changes_outputs(policy):
    trained = copy.deepcopy(policy[0])
    eng = make_engine("hf", tiny_qwen(), device="cpu")
    params = SamplingParams(n=2, max_new_tokens=6, seed=1)
    before = eng.generate(["Hi"], params)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    eng.update_weights(trained)
    after = eng.generate(["Hi"], params)
    assert [c.token_ids for c in before[0]] != [c.token_ids for c in after[0]]
    assert torch.equal(eng.model.model.layers[0].mlp.up_proj.weight, trained.model.layers[0].mlp.up_proj.weight)
    eng.sleep()
    eng.wake()
    assert [c.token_ids for c in eng.generate(["Hi"], params)[0]] == [c.token_ids for c in after[0]]


def test_bad_parameters():
    with pytest.raises(ConfigError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ConfigError, match="stop"):
        SamplingParams(stop="</s>")
    with pytest.raises(ConfigError, match="unknown rollout engine"):
        make_engine("tgi", "tiny")
