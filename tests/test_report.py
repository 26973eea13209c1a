"""`bayesmmm optimize` and `bayesmmm report` on a real run folder, and their clean failures."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from bayesmmm.decisions.optimizer import ALLOCATION_COLUMNS

runner = CliRunner()


def _budget(run_dir) -> float:
    roas = pd.read_csv(run_dir / "roas.csv")
    meta = json.loads((run_dir / "metadata.json").read_text())
    return float(roas["spend"].sum() / meta["n_dates"] * 8)


@pytest.fixture(scope="module")
def optimized(four_channel_fit, tmp_path_factory):
    result, _ = four_channel_fit
    root = tmp_path_factory.mktemp("opt")
    run_dir = shutil.copytree(result.run_dir, root / "run")  # the shared fit stays read-only
    out = root / "opt"
    budget = _budget(run_dir)
    args = ["optimize", str(run_dir), "--budget", str(budget), "--weeks", "8", "--max-change", "0.5"]
    res = runner.invoke(app, [*args, "--scenarios", "-0.2,0,0.2", "--max-draws", "300", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return run_dir, out, budget, res.output


def test_optimize_writes_the_contract(optimized):
    run_dir, out, budget, output = optimized
    assert {"allocation.csv", "summary.json", "allocation.png", "scenarios.csv", "scenarios.png"} <= {
        p.name for p in out.iterdir()
    }
    alloc = pd.read_csv(out / "allocation.csv")
    assert list(alloc.columns[:5]) == ALLOCATION_COLUMNS
    assert {"current_response_hdi_low", "optimized_response_hdi_high"} <= set(alloc.columns)
    assert alloc["optimized_spend"].sum() == pytest.approx(budget, rel=1e-9)
    assert alloc["current_spend"].sum() == pytest.approx(budget, rel=1e-9)
    assert (alloc["optimized_spend"] <= alloc["current_spend"] * 1.5 * (1 + 1e-12)).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weeks"] == 8 and summary["objective"] == "mean"
    assert summary["response"]["optimized"]["mean"] >= summary["response"]["current"]["mean"]
    scen = pd.read_csv(out / "scenarios.csv")
    assert scen["budget"].tolist() == pytest.approx([0.8 * budget, budget, 1.2 * budget])
    pointer = json.loads((run_dir / "latest_optimization.json").read_text())
    assert pointer["path"] == str(out.resolve())
    assert "Uplift vs current" in output


def test_report_is_self_contained(optimized):
    run_dir, out, _, _ = optimized
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 8  # 7 model figures + the allocation
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)  # nothing fetched from outside
    for heading in ("Key findings", "Return on ad spend", "Decomposition", "Response curves", "Budget optimization"):
        assert heading in page
    assert "Diagnostics PASSED" in page or "Diagnostics FAILED" in page
    insights = json.loads((run_dir / "insights.json").read_text())
    assert {c["channel"] for c in insights["channels"]} == set(pd.read_csv(run_dir / "roas.csv")["channel"])
    assert insights["findings"] and insights["optimization"] == str(out)
    assert (run_dir / "figures" / "response_curves.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "-5"], "budget must be a positive"),
        (["--budget", "1000", "--bound", "tv:0-10"], "is not CHANNEL=LOW:HIGH"),
        (["--budget", "1000", "--bound", "radio=0:10"], "unknown channel 'radio'"),
        (["--budget", "1000", "--objective", "best"], "unknown objective"),
        (["--budget", "1000", "--scenarios", "a,b"], "comma-separated list"),
        (["--budget", "1000", "--objective", "mean", "--risk", "0.2"], "--risk applies to"),
        (["--scenarios", "0,0.1"], "give a --budget"),
    ],
)
def test_optimize_bad_inputs(optimized, tmp_path, extra, message):
    run_dir = optimized[0]
    res = runner.invoke(app, ["optimize", str(run_dir), "--weeks", "4", *extra, "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_optimize_and_report_refuse_what_is_not_a_run(optimized, tmp_path):
    run_dir = optimized[0]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    res = runner.invoke(app, ["optimize", str(tmp_path / "notes"), "--budget", "10", "--weeks", "4", "-o", "x"])
    assert res.exit_code == 2 and "not a finished run folder" in res.output
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output
    # an existing folder that is not an optimization folder is never overwritten
    res = runner.invoke(
        app, ["optimize", str(run_dir), "--budget", "1000", "--weeks", "4", "-o", str(tmp_path / "notes")]
    )
    assert res.exit_code == 2 and "not a bayesmmm optimization folder" in res.output
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    res = runner.invoke(app, ["report", str(run_dir), "--optimization", str(tmp_path / "notes")])
    assert res.exit_code == 2 and "not an optimization folder" in res.output


HOSTILE = "<img src=x onerror=alert(1)>"


def test_report_escapes_names_from_the_data(mmm_example_frame, tmp_path):
    """A channel (and experiment) name holding markup is shown as text in report.html, never run."""
    from bayesmmm import ExperimentConfig, run_experiment, write_report
    from tests.conftest import MMM_EXAMPLE_DATA

    frame = mmm_example_frame.rename(columns={"x1": HOSTILE})
    config = ExperimentConfig.model_validate(
        {
            "name": "<script>alert(2)</script>",
            "data": {**MMM_EXAMPLE_DATA, "channel_columns": [HOSTILE, "x2"]},
            # the structure of the session's example fits, so the compiled sampler is reused
            "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
            "sampler": {"chains": 2, "draws": 60, "tune": 100, "seed": 4, "progressbar": False},
            "output": {"figures": False},
        }
    )
    run = run_experiment(config, tmp_path / "run", frame=frame).run_dir
    page = write_report(run).read_text()
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, escaped, in the tables and the meta line
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 3
    assert "Marketing mix report: &lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert page.count("<img ") == page.count("data:image/png;base64,")  # every real <img> is one of our figures


def test_report_from_the_fitted_model_in_memory_matches_the_loaded_one(four_channel_fit, tmp_path):
    """``write_report(model=...)`` (the demo's path: no reload, compiled mean reused) writes the
    same tables as a report that loads ``posterior.nc``; a folder that is not a finished run is refused."""
    from bayesmmm import write_report
    from bayesmmm.model.mmm import ModelFileError

    result, _ = four_channel_fit
    loaded = shutil.copytree(result.run_dir, tmp_path / "loaded")
    in_memory = shutil.copytree(result.run_dir, tmp_path / "memory")
    write_report(loaded)
    write_report(in_memory, model=result.model)
    for table in ("insights.csv", "response_curves.csv", "decomposition.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(loaded / table), pd.read_csv(in_memory / table), rtol=1e-12)
    (tmp_path / "half").mkdir()
    with pytest.raises(ModelFileError, match="not a finished run folder"):
        write_report(tmp_path / "half", model=result.model)


def test_report_reuses_the_runs_fit_figure_only_at_its_hdi_probability(four_channel_fit, tmp_path):
    """The run's ``fit.png`` was drawn at ``output.hdi_prob``: the report copies it then, and draws
    its own at any other probability."""
    from bayesmmm import write_report

    result, _ = four_channel_fit
    run = shutil.copytree(result.run_dir, tmp_path / "run")
    write_report(run, model=result.model)
    assert (run / "figures" / "fit.png").read_bytes() == (run / "fit.png").read_bytes()
    write_report(run, model=result.model, hdi_prob=0.5)
    drawn = (run / "figures" / "fit.png").read_bytes()
    assert drawn[:8] == b"\x89PNG\r\n\x1a\n" and drawn != (run / "fit.png").read_bytes()


def _identifiability_rows(html: str) -> dict[str, list[str]]:
    """The report's identifiability table: channel → its cells."""
    table = html[html.index("Identifiability: did the data decide") :]
    table = table[: table.index("</table>")]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    return {row[0]: row[1:] for row in rows if row}


def test_report_shows_the_extrapolated_share_also_for_runs_written_before_it(four_channel_fit, tmp_path):
    """The identifiability table's "below the data" column comes from diagnostics.json; a run whose
    diagnostics predate the check gets the same numbers from its posterior (nothing new is stored)."""
    from bayesmmm import write_report

    result, _ = four_channel_fit
    run = shutil.copytree(result.run_dir, tmp_path / "run")
    diag = json.loads((run / "diagnostics.json").read_text())
    ident = diag["identifiability"]
    assert set(ident["extrapolated"]) == {ch for ch, e in ident["channels"].items() if e["extrapolated"]}
    assert all(0 <= e["extrapolated_share"] <= 1 for e in ident["channels"].values())
    new = _identifiability_rows(write_report(run, model=result.model).read_text())
    assert "below the data" in (run / "report.html").read_text()
    for ch, e in ident["channels"].items():
        assert new[ch][-2].startswith(f"{e['extrapolated_share']:.0%}")
        assert new[ch][-2].endswith("(extrapolated)") is e["extrapolated"]
    for e in ident["channels"].values():  # as written before the check
        for key in ("extrapolated_share", "extrapolated_share_hdi", "extrapolated", "extrapolation_advice"):
            e.pop(key, None)
    for key in ("extrapolated", "extrapolated_threshold"):
        ident.pop(key)
    (run / "diagnostics.json").write_text(json.dumps(diag))
    old = _identifiability_rows(write_report(run).read_text())
    assert old == new
