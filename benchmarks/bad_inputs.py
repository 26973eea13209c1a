"""Bad inputs through the real CLI: each must exit 2 with one line, no traceback, no partial run folder.

Builds a scratch workspace (a simulated four-channel data set, its experiment YAML, one
small finished fit for the ``predict`` cases), then runs every bad input as a separate
``bayesmmm`` process and prints a markdown table:

    python benchmarks/bad_inputs.py [-o runs/bad_inputs] [--jobs 2]

Columns: the input, the command, the exit code, stderr's first line, whether a traceback
appeared, whether anything was left under the case's output folder (the folder itself
or a hidden ``.NAME.*.partial`` sibling), and whether the row meets the contract. One
case kills a real fit with SIGKILL while it compiles or samples and then asks ``predict`` to use
its output folder. Exits 1 if any row fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation

CLI = Path(sys.executable).with_name("bayesmmm")
SMALL = ["--draws", "100", "--tune", "100", "--chains", "1", "--seed", "1"]


@dataclass
class Case:
    """One bad input: ``argv`` after ``bayesmmm``; ``{ws}`` is the workspace, ``{out}`` the case's output."""

    label: str
    argv: list[str]
    setup: Callable[[Path], None] = field(default=lambda ws: None)
    kill_after_s: float | None = None  # SIGKILL the process this long after "Fitting" appears
    expect_exit: int = 2


def _frame(ws: Path) -> pd.DataFrame:
    return pd.read_csv(ws / "data" / "data.csv")


def _csv(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        edit(_frame(ws)).to_csv(ws / f"{name}.csv", index=False)

    return setup


def _raw(name: str, content: bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / name).write_bytes(content)

    return setup


def _yaml(name: str, edit: Callable[[dict], dict] | str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        if isinstance(edit, str):
            (ws / f"{name}.yaml").write_text(edit)
            return
        raw = yaml.safe_load((ws / "exp.yaml").read_text())
        (ws / f"{name}.yaml").write_text(yaml.safe_dump(edit(raw), sort_keys=False))

    return setup


def _set(frame: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    frame = frame.astype({col: object}) if isinstance(value, str) else frame
    frame.loc[row, col] = value
    return frame


def _with(raw: dict, section: str, **values) -> dict:
    raw[section] = {**raw.get(section, {}), **values}
    return raw


def _fit_data(name: str) -> list[str]:
    return ["fit", "{ws}/exp.yaml", "--data", f"{{ws}}/{name}.csv", "-o", "{out}", *SMALL]


def _fit_yaml(name: str) -> list[str]:
    return ["fit", f"{{ws}}/{name}.yaml", "-o", "{out}"]


def _foreign_netcdf(ws: Path) -> None:
    import xarray as xr

    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(ws / "foreign.nc", engine="netcdf4")


def _unfinished_run(ws: Path) -> None:
    """What a fit killed while writing leaves: the hidden temp folder, posterior.nc but no metadata.json."""
    partial = ws / "runs" / ".unfinished.99999999-abc.partial"
    partial.mkdir(parents=True, exist_ok=True)
    shutil.copy(ws / "good_run" / "posterior.nc", partial / "posterior.nc")
    folder = ws / "no_marker"
    folder.mkdir(exist_ok=True)
    shutil.copy(ws / "good_run" / "posterior.nc", folder / "posterior.nc")


CASES: list[Case] = [
    # ---- data
    Case(
        "column missing (typo `serch`)",
        _fit_data("typo"),
        _csv("typo", lambda f: f.rename(columns={"search": "serch"})),
    ),
    Case("non-numeric spend cell", _fit_data("text"), _csv("text", lambda f: _set(f, 9, "tv", "12k"))),
    Case("NaN spend", _fit_data("nan"), _csv("nan", lambda f: _set(f, 4, "social", np.nan))),
    Case("inf in the target", _fit_data("inf"), _csv("inf", lambda f: _set(f, 6, "sales", np.inf))),
    Case("negative spend", _fit_data("neg"), _csv("neg", lambda f: _set(f, 11, "ctv", -50.0))),
    Case("duplicate date", _fit_data("dup"), _csv("dup", lambda f: _set(f, 5, "date", f.loc[4, "date"]))),
    Case("gap in the weekly grid", _fit_data("gap"), _csv("gap", lambda f: f.drop(index=[30, 31]))),
    Case(
        "daily dates",
        _fit_data("daily"),
        _csv("daily", lambda f: f.assign(date=pd.date_range("2024-01-01", periods=len(f)).strftime("%Y-%m-%d"))),
    ),
    Case("unparseable date", _fit_data("baddate"), _csv("baddate", lambda f: _set(f, 2, "date", "last week"))),
    Case("too few rows (20 weeks)", _fit_data("short"), _csv("short", lambda f: f.head(20))),
    Case("constant target", _fit_data("const"), _csv("const", lambda f: f.assign(sales=100.0))),
    Case("all-zero channel", _fit_data("zero"), _csv("zero", lambda f: f.assign(tv=0.0))),
    Case("control without variation", _fit_data("flat"), _csv("flat", lambda f: f.assign(prime_day=0.0))),
    Case("empty file (0 bytes)", _fit_data("empty"), _raw("empty.csv", b"")),
    Case("header only", _fit_data("header"), _raw("header.csv", b"date,sales,search,social,ctv,tv\n")),
    Case("binary file", _fit_data("binary"), _raw("binary.csv", bytes(range(256)) * 8)),
    Case("data file does not exist", _fit_data("nowhere")),
    Case("data path is a folder", ["fit", "{ws}/exp.yaml", "--data", "{ws}/data", "-o", "{out}", *SMALL]),
    Case("four-weekly dates", _fit_data("four"), _csv("four", lambda f: f.iloc[::4])),
    # ---- YAML
    Case("unknown key (`targt_column`)", _fit_yaml("key"), _yaml("key", lambda r: _with(r, "data", targt_column="y"))),
    Case("unknown section (`samplr`)", _fit_yaml("sec"), _yaml("sec", lambda r: {**r, "samplr": {"draws": 10}})),
    Case("wrong type (`draws: many`)", _fit_yaml("type"), _yaml("type", lambda r: _with(r, "sampler", draws="many"))),
    Case(
        "unknown adstock (`geometrik`)",
        _fit_yaml("adstock"),
        _yaml("adstock", lambda r: _with(r, "model", adstock={"name": "geometrik"})),
    ),
    Case("unknown saturation (`hil`)", _fit_yaml("sat"), _yaml("sat", lambda r: _with(r, "model", saturation="hil"))),
    Case("sampler draws: 0", _fit_yaml("draws"), _yaml("draws", lambda r: _with(r, "sampler", draws=0))),
    Case("sampler chains: 0", _fit_yaml("chains"), _yaml("chains", lambda r: _with(r, "sampler", chains=0))),
    Case("target_accept: 1.5", _fit_yaml("ta"), _yaml("ta", lambda r: _with(r, "sampler", target_accept=1.5))),
    Case("device: gpu with nutpie", _fit_yaml("gpu"), _yaml("gpu", lambda r: _with(r, "sampler", device="gpu"))),
    Case("unknown backend (`--sampler stan`)", ["fit", "{ws}/exp.yaml", "--sampler", "stan", "-o", "{out}"]),
    Case("`--draws 0` on the command line", ["fit", "{ws}/exp.yaml", "--draws", "0", "-o", "{out}"]),
    Case("YAML syntax error", _fit_yaml("syntax"), _yaml("syntax", "data: {channel_columns: [a, b\n")),
    Case("empty YAML", _fit_yaml("blank"), _yaml("blank", "")),
    Case("YAML file does not exist", _fit_yaml("missing")),
    # ---- artifacts
    Case("`-o` is a foreign non-empty folder", ["fit", "{ws}/exp.yaml", "-o", "{ws}/data", *SMALL]),
    Case(
        "fit killed (SIGKILL) 15 s into fitting, then `predict` on its `-o`",
        ["fit", "{ws}/exp.yaml", "-o", "{out}", "--draws", "20000", "--tune", "1000", "--chains", "1"],
        kill_after_s=15.0,
    ),
    Case(
        "`predict` on an unfinished run's temp folder",
        ["predict", "{ws}/runs/.unfinished.99999999-abc.partial", "--data", "{ws}/future.csv", "-o", "{out}/f.csv"],
        _unfinished_run,
    ),
    Case(
        "`predict` on a folder without metadata.json",
        ["predict", "{ws}/no_marker", "--data", "{ws}/future.csv", "-o", "{out}/f.csv"],
        _unfinished_run,
    ),
    Case(
        "`predict` with a corrupt posterior.nc",
        ["predict", "{ws}/corrupt.nc", "--data", "{ws}/future.csv", "-o", "{out}/f.csv"],
        _raw("corrupt.nc", b"\x89HDF\r\n\x1a\n" + b"\x00" * 100),
    ),
    Case(
        "`predict` with a foreign NetCDF",
        ["predict", "{ws}/foreign.nc", "--data", "{ws}/future.csv", "-o", "{out}/f.csv"],
        _foreign_netcdf,
    ),
    Case(
        "`predict`: future CSV lacks a channel",
        ["predict", "{ws}/good_run", "--data", "{ws}/future_typo.csv", "-o", "{out}/f.csv"],
        lambda ws: pd.read_csv(ws / "future.csv").drop(columns=["tv"]).to_csv(ws / "future_typo.csv", index=False),
    ),
    Case(
        "`predict`: future weeks overlap the training weeks",
        ["predict", "{ws}/good_run", "--data", "{ws}/future_past.csv", "-o", "{out}/f.csv"],
        lambda ws: _frame(ws).drop(columns=["sales"]).tail(4).to_csv(ws / "future_past.csv", index=False),
    ),
    Case(
        "`predict --hdi-prob 1.5`",
        ["predict", "{ws}/good_run", "--data", "{ws}/future.csv", "-o", "{out}/f.csv", "--hdi-prob", "1.5"],
    ),
    Case("`simulate` unknown scenario", ["simulate", "four_chanel", "-o", "{out}"]),
    Case(
        "`simulate` scenario with an unknown key",
        ["simulate", "{ws}/scen.yaml", "-o", "{out}"],
        lambda ws: (ws / "scen.yaml").write_text(
            builtin_scenario("four_channel").read_text().replace("n_weeks:", "n_weks:")
        ),
    ),
]


def build_workspace(ws: Path) -> None:
    """Simulated data, a small experiment YAML, one finished fit and a future-weeks CSV."""
    if ws.exists():
        shutil.rmtree(ws)
    data_path, _ = write_simulation(load_scenario(builtin_scenario("four_channel")), ws / "data")
    raw = yaml.safe_load(builtin_scenario("four_channel_experiment").read_text())
    raw["data"]["path"] = str(data_path)
    raw["sampler"] = {"backend": "nutpie", "chains": 1, "draws": 100, "tune": 100, "seed": 1}
    raw["output"] = {"figures": False}
    (ws / "exp.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (ws / "runs").mkdir()
    frame = pd.read_csv(data_path)
    last = pd.Timestamp(frame["date"].iloc[-1])
    future = frame.drop(columns=["sales"]).tail(8).copy()
    future["date"] = pd.date_range(last + pd.Timedelta(days=7), periods=8, freq="7D").strftime("%Y-%m-%d")
    future.to_csv(ws / "future.csv", index=False)
    done = subprocess.run([str(CLI), "fit", str(ws / "exp.yaml"), "-o", str(ws / "good_run")], capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"the reference fit failed:\n{done.stderr.decode()}")


def run_case(case: Case, ws: Path) -> dict:
    slug = "".join(ch if ch.isalnum() else "_" for ch in case.label)[:40]
    out = ws / "runs" / slug
    case.setup(ws)
    argv = [a.format(ws=ws, out=out) for a in case.argv]
    t0 = time.perf_counter()
    killed = False
    if case.kill_after_s is None:
        done = subprocess.run([str(CLI), *argv], capture_output=True, text=True)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        code, stdout, stderr = _kill_midway(argv, case.kill_after_s)
        killed = True
        # the later command must not take what the killed fit left for a finished run
        argv = ["predict", str(out), "--data", str(ws / "future.csv"), "-o", str(ws / "killed_forecast.csv")]
        done = subprocess.run([str(CLI), *argv], capture_output=True, text=True)
        stdout, stderr = stdout + done.stdout, f"(fit killed, exit {code}) " + done.stderr
        code = done.returncode
    lines = [line for line in stderr.splitlines() if line.strip()]
    if killed:
        lines = lines[-1:]
        lines[0] = f"after the kill, predict: {lines[0]}" if lines else ""
    left = [p.name for p in out.parent.glob(f".{out.name}*")] + ([out.name] if out.exists() else [])
    traceback = "Traceback" in stdout + stderr
    ok = code == case.expect_exit and len(lines) == 1 and not traceback and not left
    return {
        "input": case.label,
        "command": "bayesmmm " + " ".join(a.replace(str(ws) + "/", "") for a in case.argv),
        "exit": code,
        "message": lines[0] if lines else "",
        "stderr lines": len(lines),
        "traceback": "yes" if traceback else "no",
        "left behind": ", ".join(left) or "nothing",
        "ok": "✓" if ok else "✗",
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def _kill_midway(argv: list[str], after_s: float) -> tuple[int, str, str]:
    """Start a fit, SIGKILL it ``after_s`` seconds after it reports "Fitting" (i.e. while compiling/sampling)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(CLI), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out_lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out_lines.append(line)
        if line.startswith("Fitting"):
            break
    time.sleep(after_s)
    proc.send_signal(signal.SIGKILL)
    stdout, stderr = proc.communicate()
    return proc.returncode, "".join(out_lines) + stdout, stderr


def markdown(rows: list[dict]) -> str:
    cols = ["input", "exit", "message", "traceback", "left behind", "ok"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [str(r[c]).replace("|", "\\|") for c in cols]
        cells[2] = f"`{cells[2]}`" if cells[2] else ""
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/bad_inputs"))
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    args = parser.parse_args()
    ws = args.out.resolve()
    t0 = time.perf_counter()
    build_workspace(ws)
    print(f"workspace ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    plain = [c for c in CASES if c.kill_after_s is None]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: run_case(c, ws), plain))
    rows += [run_case(c, ws) for c in CASES if c.kill_after_s is not None]
    order = {c.label: i for i, c in enumerate(CASES)}
    rows.sort(key=lambda r: order[r["input"]])
    table = markdown(rows)
    (ws / "bad_inputs.md").write_text(table + "\n")
    pd.DataFrame(rows).to_csv(ws / "bad_inputs.csv", index=False)
    print(table)
    bad = [r for r in rows if r["ok"] != "✓"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} rows meet the contract; {time.perf_counter() - t0:.0f} s in all")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
