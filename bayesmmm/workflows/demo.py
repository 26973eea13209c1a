"""The demo's calibrated fit in a child process (``bayesmmm demo``), and what counts as bad input.

:class:`ChildFit` runs an experiment, fitted and reported, in a fresh Python process beside the
demo's first fit (each fit is mostly one core of Python and XLA compilation, so two side by side
use both cores); :func:`input_errors` lists the exception types that mean bad input, for the CLI's
exit code 2 and for the child's relayed errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["ChildFit", "child_fit_main", "input_errors"]


def input_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input (a file, YAML, data, a model file, an option), not a
    bug: the CLI prints their message in one line and exits 2; the demo's child relays them as such."""
    from bayesmmm.components import PluginError, UnknownNameError
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.data.loading import DataError
    from bayesmmm.decisions.optimizer import OptimizationError
    from bayesmmm.inference.sampling import SamplerError
    from bayesmmm.model.mmm import ModelFileError
    from bayesmmm.workflows.distributed import EngineError
    from bayesmmm.workflows.tracking import TrackingError

    return (
        ConfigError,
        DataError,
        ModelFileError,
        SamplerError,
        UnknownNameError,
        PluginError,
        FileExistsError,
        EngineError,
        OptimizationError,
        TrackingError,
    )


class ChildFit:
    """An experiment fitted and reported by a fresh Python process (the demo's calibrated fit).

    A subprocess rather than ``multiprocessing``: nothing of the calling program is imported
    again in the child. The process starts (and imports) at once; :meth:`start` sends it the
    experiment on stdin (:meth:`cancel`: none, and it exits). The run folder and the warnings
    raised meanwhile come back as JSON on stdout; its stderr is kept in a file for an error.
    """

    def __init__(self, run_dir: Path) -> None:
        import subprocess
        import tempfile

        self._run_dir = Path(run_dir)
        self._stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed by _close())
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        code = "import sys; from bayesmmm.workflows.demo import child_fit_main; sys.exit(child_fit_main())"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code, str(run_dir)],
            stdin=subprocess.PIPE,
            stdout=self._stdout,
            stderr=self._stderr,
            text=True,
        )

    def start(self, config_yaml: str) -> ChildFit:
        """Send the experiment: the child fits it and writes its report."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(config_yaml)
        self._proc.stdin.close()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt the child if it still runs, as Ctrl-C would; a child that does not stop within
        ``timeout`` seconds (an interrupt waits for the XLA program running) is killed and its
        half-built run folder removed. Either way nothing half-written is left."""
        import signal
        import subprocess

        from bayesmmm.io import remove_stale_partials

        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        remove_stale_partials(self._run_dir)
        self._close()

    def cancel(self) -> None:
        """No experiment after all: the child exits without writing anything."""
        self.start("")
        self._proc.wait()
        self._close()

    def _close(self) -> None:
        for f in (self._stdout, self._stderr):
            f.close()

    def result(self) -> tuple[str, list[str]]:
        """Wait for the child: its run folder and warnings. Its error is raised here: an input
        error (bad data, config, ...) as a ConfigError, anything else as a RuntimeError."""
        import json

        from bayesmmm.config.experiment import ConfigError

        code = self._proc.wait()
        self._stdout.seek(0)
        self._stderr.seek(0)
        out, err = self._stdout.read(), self._stderr.read()
        self._close()
        lines = out.splitlines()
        done = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        if code == 0 and "run_dir" in done:
            return done["run_dir"], done["warnings"]
        if "error" in done:
            raise (ConfigError if done.get("input") else RuntimeError)(f"the calibrated fit: {done['error']}")
        tail = [line for line in err.splitlines() if line.strip()][-3:]
        raise RuntimeError(f"the calibrated fit's process ended with status {code}: {' / '.join(tail)}")


def child_fit_main() -> int:
    """Body of :class:`ChildFit`'s process: the experiment YAML on stdin, the run folder in argv."""
    import json
    import warnings

    from pydantic import ValidationError

    from bayesmmm.config.experiment import ExperimentConfig
    from bayesmmm.progress import set_verbosity
    from bayesmmm.reporting.report import write_report
    from bayesmmm.workflows.experiment import run_experiment

    set_verbosity(-1)
    text = sys.stdin.read()  # the imports above overlap the parent's work until it sends this
    if not text.strip():
        return 0  # cancelled
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            result = run_experiment(ExperimentConfig.from_yaml(text), sys.argv[1])
            write_report(result.run_dir, model=result.model)
        done = {"run_dir": str(result.run_dir), "warnings": [str(w.message) for w in caught]}
    except Exception as exc:  # relayed to the parent, which reports it as its own
        done = {"error": str(exc), "input": isinstance(exc, (ValidationError, *input_errors()))}
    print(json.dumps(done))
    sys.stdout.flush()
    return 1 if "error" in done else 0
