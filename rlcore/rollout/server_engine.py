"""The trainer's side of a generation server (``vllm_mode=server``): prompts go out over HTTP, completions come
back, and :meth:`ServerEngine.update_weights` pushes the trained weights (LoRA merged) after each optimiser step.

A server that does not answer is waited for, with retries, up to ``timeout_s`` (TRL's ``vllm_server_timeout``):
at start (both may be launched together) and when it restarts mid-run; after a restart the engine pushes its
latest weights again before generating. A server still unreachable after that is a one-line error naming its URL.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from rlcore.errors import UserError
from rlcore.logging import announce
from rlcore.rollout import protocol
from rlcore.rollout.base import Completion, Prompts, RolloutEngine, SamplingParams


class _Stale(Exception):
    """The server does not hold the weights this engine pushed last (it restarted)."""


class ServerEngine(RolloutEngine):
    """Generation on a remote ``rlcore vllm-serve`` at ``base_url`` (e.g. ``http://10.0.0.2:8000``).

    ``tokenizer``: the trainer's (prompts are sent as token ids). In a run of several processes every process
    generates its own prompts; only the one with ``push=True`` pushes weights, and ``barrier`` (called by every
    process after a push) keeps the others from generating with the old ones. ``transport``: how the weights
    travel: ``http`` (in the request body) or over a communicator, ``nccl`` (GPU tensors) or ``gloo`` (CPU); the
    server must reach this machine for the last two.
    """

    def __init__(self, base_url: str, tokenizer: Any, *, timeout_s: float = 240.0, push: bool = True,
                 barrier: Callable[[], None] | None = None, retry_every_s: float = 1.0, transport: str = "http"):
        if transport not in ("http", *protocol.COLLECTIVES):
            raise UserError(f"weight transport must be http, gloo or nccl, got '{transport}'")
        self.url = base_url.rstrip("/")
        self.tokenizer = tokenizer
        self.timeout_s, self.retry_every_s = timeout_s, retry_every_s
        self.push, self.barrier = push, barrier
        self.version = 0
        """Version of the weights pushed last (0: the server's own, loaded from its --model)."""
        self._model: Any = None
        self.transport = transport
        self._channel: protocol.Channel | None = None
        self._server_id = ""
        """The server the communicator was made with (a restarted one needs a new communicator)."""
        health = self._request(protocol.HEALTH)
        announce(f"generation server {self.url}: {health['model']}")
        if push and transport != "http":
            self._connect(health["server_id"])

    def _connect(self, server_id: str) -> None:
        """Make the two-member communicator with the server (this process is rank 0 and hosts its store)."""
        parsed = urllib.parse.urlsplit(self.url)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # our address as the server sees it
            probe.connect((parsed.hostname, parsed.port or 80))
            host = probe.getsockname()[0]
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        body = json.dumps({"host": host, "port": port, "backend": self.transport}).encode()
        self._while(protocol.INIT_COMMUNICATOR, body, {"Content-Type": "application/json"}, lambda: setattr(
            self, "_channel", protocol.Channel(host, port, 0, self.transport, timeout_s=self.timeout_s)))
        self._server_id = server_id

    def _while(self, path: str, body: bytes, headers: dict[str, str], work: Callable[[], None]) -> dict[str, Any]:
        """Send a request from a thread while ``work`` runs here: both ends of a collective take part at once."""
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["reply"] = self._request(path, body, headers)
            except BaseException as e:  # re-raised in the caller
                box["error"] = e

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        work()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def _request(self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
                 ) -> dict[str, Any]:
        """One request, retried while the server cannot be reached (down, restarting) for up to ``timeout_s``."""
        deadline, waited = time.monotonic() + self.timeout_s, False
        while True:
            request = urllib.request.Request(self.url + path, data=body, headers=headers or {},
                                             method="POST" if body is not None else "GET")
            try:
                with urllib.request.urlopen(request) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                reply = json.loads(e.read() or b"{}")
                if e.code == protocol.STALE:
                    raise _Stale(reply.get("error", "")) from e
                raise UserError(f"generation server {self.url}{path} failed: {reply.get('error', e)}") from e
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if time.monotonic() >= deadline:
                    reason = getattr(e, "reason", e)
                    raise UserError(f"generation server {self.url} unreachable for {self.timeout_s:g} s ({reason});"
                                    f" start it with `rlcore vllm-serve --model PATH --port P` or fix "
                                    f"vllm_server_base_url") from e
                if not waited:
                    announce(f"waiting for the generation server {self.url} (up to {self.timeout_s:g} s) ...")
                    waited = True
                time.sleep(self.retry_every_s)

    def generate(self, prompts: Prompts, params: SamplingParams) -> list[list[Completion]]:
        body = {"prompts": self.encode_prompts(prompts), "params": protocol.params_to_json(params),
                "weights_version": self.version if self.push else None}
        for _ in range(3):
            try:
                reply = self._request(protocol.GENERATE, json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
                return protocol.completions_from_json(reply["completions"])
            except _Stale:  # restarted since our last push: it serves its --model weights again
                announce(f"generation server {self.url} restarted; pushing weights version {self.version} again")
                self._send(self._model)
        raise UserError(f"generation server {self.url} keeps losing the pushed weights (restarting?)")

    def update_weights(self, model: Any) -> None:
        """Push ``model``'s weights (LoRA merged) to the server as the next version (the pushing process), then
        wait at ``barrier``."""
        if self.push:
            self._model = model
            self.version += 1
            self._send(model)
        if self.barrier is not None:
            self.barrier()

    def _send(self, model: Any) -> None:
        weights = protocol.merged_weights(model)
        headers = {protocol.VERSION_HEADER: str(self.version)}
        if self.transport == "http":
            self._request(protocol.UPDATE_WEIGHTS, protocol.weights_to_bytes(weights),
                          {**headers, "Content-Type": "application/octet-stream"})
            return
        server_id = self._request(protocol.HEALTH)["server_id"]
        if server_id != self._server_id:  # restarted: its communicator is gone
            self._connect(server_id)
        body = json.dumps(protocol.weights_spec(weights)).encode()
        channel = self._channel
        assert channel is not None
        self._while(protocol.UPDATE_WEIGHTS, body, {**headers, protocol.TRANSPORT_HEADER: "collective",
                                                    "Content-Type": "application/json"},
                    lambda: channel.send(weights))
