"""A process pool with a per-file deadline and crash isolation.

concurrent.futures cannot kill one hung task and breaks entirely when a worker dies, so
hex runs its own small pool: each worker is a long-lived process fed one Task at a time
over a pipe. A worker that overruns the per-file deadline is killed and replaced; one
that dies (a crash in a native reader) is replaced; either way the file gets an error
entry and the scan goes on. ``workers=0`` scans in-process, without isolation (debugging).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from hexscan.engine.walk import Task, WorkerSettings, scan_task
from hexscan.model.report import ErrorEntry, FileEntry, Status, TaskResult

OnResult = Callable[[TaskResult], None]


def _worker_main(conn: Connection, settings: WorkerSettings) -> None:
    """Loop in the worker: receive a Task, send back its TaskResult; None ends."""
    from hexscan.scanners.registry import load_scanners

    scanners = load_scanners(settings.skip, settings.plugins)
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(_safe_scan(task, settings, scanners))


def _safe_scan(task: Task, settings: WorkerSettings, scanners: list[Any]) -> TaskResult:
    try:
        return scan_task(task, settings, scanners)
    except Exception as exc:  # noqa: BLE001 - reported as the file's error, never fatal
        return failed(task, "crash", f"internal error: {type(exc).__name__}: {exc}")


def failed(task: Task, kind: str, message: str) -> TaskResult:
    """The result of a file that could not be scanned at all."""
    return TaskResult(task.path, (), (FileEntry(task.path, None, "unknown", None, Status.ERROR,
                                                message, rel_path=task.rel_path),),
                      (ErrorEntry(task.path, None, kind, message),))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: Task | None = None
    started: float = 0.0


class WorkerPool:
    """Runs tasks on ``size`` worker processes; see the module docstring."""

    def __init__(self, size: int, settings: WorkerSettings, file_timeout: float) -> None:
        self.size = size
        self.settings = settings
        self.file_timeout = file_timeout
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
            else "spawn"
        self.ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            self.ctx.set_forkserver_preload(["hexscan.engine.walk",
                                             "hexscan.scanners.registry"])
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker_main, args=(child, self.settings),
                                   daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _retire(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self.workers.remove(worker)

    def run(self, tasks: Iterable[Task], on_result: OnResult, deadline: float) -> None:
        """Run every task, calling ``on_result`` for each; stop at ``deadline`` (monotonic)."""
        queue = deque(tasks)
        try:
            while queue or any(w.task for w in self.workers):
                if time.monotonic() >= deadline:
                    self._abandon(queue, on_result)
                    return
                self._dispatch(queue)
                self._collect(on_result, deadline)
        finally:
            self.shutdown()

    def _dispatch(self, queue: deque[Task]) -> None:
        while queue and len(self.workers) < self.size:
            self.workers.append(self._spawn())
        for worker in self.workers:
            if worker.task is None and queue:
                worker.task = queue.popleft()
                worker.started = time.monotonic()
                worker.conn.send(worker.task)

    def _collect(self, on_result: OnResult, deadline: float) -> None:
        busy = [w for w in self.workers if w.task is not None]
        now = time.monotonic()
        wake = min([deadline] + [w.started + self.file_timeout for w in busy])
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                     timeout=max(0.0, wake - now))
        for worker in busy:
            if worker.conn in ready:
                self._receive(worker, on_result)
            elif worker.process.sentinel in ready or not worker.process.is_alive():
                self._lost(worker, on_result, "crash", _death(worker))
            elif time.monotonic() - worker.started >= self.file_timeout:
                self._lost(worker, on_result, "timeout",
                           f"file not finished within the per-file limit of "
                           f"{self.file_timeout:g} s")

    def _receive(self, worker: _Worker, on_result: OnResult) -> None:
        task = worker.task
        assert task is not None
        try:
            result = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(1)  # the pipe closed because the process died: say how
            self._lost(worker, on_result, "crash", _death(worker))
            return
        worker.task = None
        on_result(result)

    def _lost(self, worker: _Worker, on_result: OnResult, kind: str, message: str) -> None:
        task = worker.task
        assert task is not None
        self._retire(worker)
        on_result(failed(task, kind, message))

    def _abandon(self, queue: deque[Task], on_result: OnResult) -> None:
        """The whole-scan deadline passed: every unfinished file is an error."""
        message = "not finished: the whole-scan timeout was reached"
        for worker in list(self.workers):
            if worker.task is not None:
                on_result(failed(worker.task, "timeout", message))
                worker.task = None
                self._retire(worker)
        while queue:
            on_result(failed(queue.popleft(), "timeout", message))

    def shutdown(self) -> None:
        """Ask idle workers to stop, then make sure every worker is gone."""
        for worker in self.workers:
            if worker.task is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in list(self.workers):
            worker.process.join(2)
            self._retire(worker)


def _death(worker: _Worker) -> str:
    """Why a worker vanished: its exit code, or the signal that killed it."""
    code = worker.process.exitcode
    how = (f"killed by signal {-code}" if code is not None and code < 0 else
           f"exit code {code}" if code is not None else "no exit status")
    return f"worker process died ({how}) while reading this file"


def run_tasks(tasks: list[Task], settings: WorkerSettings, workers: int, file_timeout: float,
              deadline: float, on_result: OnResult) -> None:
    """Run tasks in the pool, or in-process when ``workers`` is 0."""
    if workers <= 0:
        from hexscan.scanners.registry import load_scanners

        scanners = load_scanners(settings.skip, settings.plugins)
        for index, task in enumerate(tasks):
            if time.monotonic() >= deadline:
                for rest in tasks[index:]:
                    on_result(failed(rest, "timeout",
                                     "not finished: the whole-scan timeout was reached"))
                return
            on_result(_safe_scan(task, settings, scanners))
        return
    WorkerPool(min(workers, max(1, len(tasks))), settings, file_timeout).run(
        tasks, on_result, deadline)
