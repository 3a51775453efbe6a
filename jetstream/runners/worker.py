"""A long-lived task worker: reads one JSON request per line on stdin ({"argv": [...],
"env": {...}}), runs `jetstream <argv>` in this process, and answers one JSON line
({"code": int, "out": str, "err": str}) on its real stdout. The local runner keeps one
per slot so each task does not pay Python start-up and imports again; a task still gets
a fresh command-line invocation, exactly the command a pod runs.

A worker whose runner is gone (killed, even by SIGKILL, which no handler sees) exits within
PARENT_POLL_SECONDS, also in the middle of a task: a thread polls its parent process id.
(Not `prctl(PR_SET_PDEATHSIG)`: it fires when the runner *thread* that started the worker
ends, not the runner process.)"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time

PARENT_POLL_SECONDS = 0.5
EXIT_ORPHANED = 1


def die_with_parent(parent: int | None = None, interval: float = PARENT_POLL_SECONDS) -> None:
    """Exit this process as soon as its parent process (the runner) is gone."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)  # no cleanup: the task is abandoned, reruns redo it
            time.sleep(interval)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_one(argv: list[str], env: dict[str, str]) -> dict:
    from jetstream.cli import main

    saved = dict(os.environ)
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException as exc:  # a crash of the task, not of the worker
                import traceback

                traceback.print_exc(file=err)
                code = 1
                if isinstance(exc, KeyboardInterrupt):
                    raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def serve() -> None:
    die_with_parent()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    import jetstream.cli  # noqa: F401  (import once, up front)

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = run_one(request["argv"], request.get("env") or {})
        channel.write(json.dumps(reply) + "\n")
        channel.flush()


if __name__ == "__main__":
    serve()
