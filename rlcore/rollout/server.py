"""``rlcore vllm-serve --model PATH --port P``: a generation server that a trainer with ``vllm_mode=server``
sends prompts to and pushes new weights into (the wire format is in :mod:`rlcore.rollout.protocol`).

The engine is vLLM's (:class:`~rlcore.rollout.vllm_engine.VLLMEngine`) in this process, on this node's GPUs
(``--tensor-parallel-size N`` shards it over N of them); requests are served one at a time, in arrival order.
:func:`serve` takes any :class:`~rlcore.rollout.base.RolloutEngine`, which is how the tests run the same server
code on a transformers engine.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from rlcore.cli.commands import Command
from rlcore.config import check_range
from rlcore.rollout import protocol
from rlcore.rollout.base import RolloutEngine


class GenerationServer(HTTPServer):
    """An HTTP server around ``engine``; ``serve_forever()`` answers requests until ``shutdown()``."""

    def __init__(self, engine: RolloutEngine, host: str, port: int, model: str):
        super().__init__((host, port), _Handler)
        self.engine, self.model = engine, model
        self.version = 0
        """Version of the weights the engine holds: 0 for those loaded from ``model``, then the pushed ones'."""
        self.server_id = secrets.token_hex(8)
        self.channel: protocol.Channel | None = None
        """The trainer's communicator (``/init_communicator/``), when weights come by NCCL or gloo."""

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model, "weights_version": self.version, "server_id": self.server_id}


class _Handler(BaseHTTPRequestHandler):
    server: GenerationServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - one line per request is noise
        return None

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == protocol.HEALTH:
            self._reply(200, self.server.health())
        else:
            self._reply(404, {"error": f"unknown endpoint {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        srv = self.server
        try:
            if self.path == protocol.GENERATE:
                request = json.loads(self._body())
                expected = request.get("weights_version")
                if expected is not None and expected != srv.version:
                    self._reply(protocol.STALE, {"error": f"server holds weights version {srv.version}, not "
                                                          f"{expected}", **srv.health()})
                    return
                groups = srv.engine.generate(request["prompts"], protocol.params_from_json(request["params"]))
                self._reply(200, {"completions": protocol.completions_to_json(groups), **srv.health()})
            elif self.path == protocol.UPDATE_WEIGHTS:
                version = int(self.headers[protocol.VERSION_HEADER])
                if self.headers.get(protocol.TRANSPORT_HEADER) == "collective":
                    if srv.channel is None:
                        raise RuntimeError("no communicator: POST /init_communicator/ first")
                    weights = srv.channel.receive(json.loads(self._body()))
                else:
                    weights = protocol.weights_from_bytes(self._body())
                srv.engine.load_weights(weights)
                srv.version = version
                self._reply(200, srv.health())
            elif self.path == protocol.INIT_COMMUNICATOR:
                request = json.loads(self._body())
                srv.channel = protocol.Channel(request["host"], int(request["port"]), 1, request["backend"])
                self._reply(200, srv.health())
            else:
                self._reply(404, {"error": f"unknown endpoint {self.path}"})
        except Exception as e:  # the trainer gets the reason; the server keeps serving
            self._reply(500, {"error": f"{type(e).__name__}: {e}"})


def start(engine: RolloutEngine, host: str = "127.0.0.1", port: int = 0, model: str = "") -> GenerationServer:
    """Serve ``engine`` from a background thread (port 0: a free one, see ``server.server_port``)."""
    server = GenerationServer(engine, host, port, model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory (or hub id) vLLM loads at start")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all interfaces)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs vLLM shards the model over")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9,
                        help="share of each GPU's memory vLLM may take (default 0.9: the GPUs are its own)")
    parser.add_argument("--dtype", default="auto", help="weights dtype (auto, bfloat16, float32, ...)")
    parser.add_argument("--max-model-len", type=int, help="longest prompt + response (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (faster start, slower steps)")


def _run(args: argparse.Namespace) -> int:
    from rlcore.rollout import make_engine

    check_range("port", args.port, 0, 65535)
    check_range("tensor-parallel-size", args.tensor_parallel_size, low=1)
    engine = make_engine("vllm", args.model, gpu_memory_utilization=args.gpu_memory_utilization, dtype=args.dtype,
                         max_model_len=args.max_model_len, seed=args.seed, enforce_eager=args.enforce_eager,
                         tensor_parallel_size=args.tensor_parallel_size)
    server = GenerationServer(engine, args.host, args.port, str(args.model))
    print(f"vllm-serve: {args.model} on http://{args.host}:{server.server_port} (Ctrl-C stops)", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()
    return 0


COMMAND = Command(help="serve generation with vLLM for trainers with vllm_mode=server (TRL's vllm-serve)",
                  configure=_configure, run=_run)
