"""Verifier worker process: reads JSON lines ``{"i", "pred", "gold", "t"}`` on stdin, answers ``{"i", "ok"}``.

Started by :class:`rlcore.envs.reasoning.verifier.VerifierPool`. It runs math-verify in its own main thread (math-verify
times out with ``signal.alarm``), under an address-space limit, and prints ``{"ready": true}`` once imported.
Nothing is evaluated: inputs are parsed as LaTeX / plain expressions by math-verify only.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def main() -> None:
    limit = int(float(os.environ.get("RLCORE_VERIFY_MEMORY_GB", "4")) * 2**30)
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from rlcore.envs.reasoning.rewards import answers_match

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        try:
            ok = answers_match(task["pred"], task["gold"], timeout_s=int(task["t"]))
        except Exception:  # any failure to parse or compare (incl. MemoryError) means "not verified"
            ok = False
        print(json.dumps({"i": task["i"], "ok": ok}), flush=True)


if __name__ == "__main__":
    main()
