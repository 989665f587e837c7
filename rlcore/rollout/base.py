"""The rollout interface: prompts and sampling parameters in, completions with token log-probs out.

Every engine returns, per prompt, ``n`` :class:`Completion` objects in prompt order. Log-probs are those of the
sampled tokens under the distribution they were drawn from: softmax(z / T) after top-k / top-p truncation (vLLM's
"processed_logprobs"). With top_p = 1 and top_k = 0 (the RL default) these are exactly the numbers of a
teacher-forced forward pass at temperature T; greedy decoding (T = 0) reports the T = 1 log-probs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlcore.config import check_range
from rlcore.errors import ConfigError

Prompts = Sequence[str] | Sequence[Sequence[int]]
"""Either prompt texts (tokenised as they are: apply the chat template first) or lists of token ids."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. Defaults follow the G2RL training setting (temperature 1, no truncation)."""

    n: int = 1
    """Completions per prompt (the GRPO group size)."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]; 1 disables it."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 disables it."""
    max_new_tokens: int = 256
    """Length cap of a completion; reaching it gives finish reason "length"."""
    seed: int | None = None
    """Seed of this call (None: a fresh draw). Same seed, prompts, params and batch size: same samples."""
    stop: tuple[str, ...] = ()
    """Extra stop strings (EOS tokens always stop); the stop string stays in the returned text and ids."""

    def __post_init__(self) -> None:
        check_range("n", self.n, 1)
        check_range("temperature", self.temperature, 0.0)
        check_range("top_p", self.top_p, 0.0, 1.0, low_open=True)
        check_range("top_k", self.top_k, 0)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        if isinstance(self.stop, str):
            raise ConfigError("stop must be a list of strings, e.g. stop=('</answer>',), not one string")
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass
class Completion:
    """One sampled response."""

    prompt_index: int
    """Index of its prompt in the ``generate`` call."""
    token_ids: list[int]
    """Response tokens, including the EOS token when it stopped on one."""
    text: str
    """Decoded response without special tokens."""
    logprobs: list[float]
    """log p(token) at the sampling temperature, one per token id."""
    finish_reason: Literal["stop", "length"]
    """"stop": an EOS token or stop string ended it; "length": it hit ``max_new_tokens``."""
    prompt_token_ids: list[int] = field(default_factory=list)
    """The prompt as the engine tokenised it (no padding)."""


class RolloutEngine(ABC):
    """Generates completions from one policy; kept in step with the trained model through ``update_weights``."""

    tokenizer: Any

    @abstractmethod
    def generate(self, prompts: Prompts, params: SamplingParams) -> list[list[Completion]]:
        """``n`` completions per prompt: result[i][j] is sample j of prompt i."""

    @abstractmethod
    def update_weights(self, model: Any) -> None:
        """Copy the parameters of ``model`` (the training copy) into the engine."""

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Load named tensors (a transformers ``state_dict`` of the same architecture) into the engine: what a
        generation server does with pushed weights."""
        raise ConfigError(f"{type(self).__name__} cannot load pushed weights")

    def sleep(self) -> None:
        """Release accelerator memory between generation and training (no-op where nothing can be freed)."""
        return None

    def wake(self) -> None:
        """Undo :meth:`sleep` before the next ``generate``."""
        return None

    def close(self) -> None:
        """Free the engine's resources."""
        return None

    def encode_prompts(self, prompts: Prompts) -> list[list[int]]:
        """Token ids of each prompt (texts are tokenised without adding special tokens)."""
        if len(prompts) == 0:
            return []
        if isinstance(prompts[0], str):
            return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return [[int(t) for t in p] for p in prompts]
