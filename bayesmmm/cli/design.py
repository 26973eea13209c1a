"""``bayesmmm design``: rank candidate lift tests by what they buy (:mod:`bayesmmm.decisions.design`).

Added to the app by :func:`add_commands` (see :mod:`bayesmmm.cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesmmm.cli.main import handle_errors

__all__ = ["add_commands", "design"]


@handle_errors
def design(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit`")],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="output folder: designs.csv, design.html (default RUN_DIR/design)"),
    ] = None,
    weeks: Annotated[int, typer.Option("--weeks", help="longest test in periods (lengths 2, 4, 8, 12 up to it)")] = 12,
    max_change: Annotated[
        float, typer.Option("--max-change", help="largest pull-back / scale-up as a fraction of the planned spend")
    ] = 0.5,
    channels: Annotated[
        list[str] | None, typer.Option("--channels", help="test only these channels; repeatable")
    ] = None,
    geos: Annotated[
        list[str] | None, typer.Option("--geos", help="geo models: treat only these geos; repeatable")
    ] = None,
    max_draws: Annotated[int, typer.Option("--max-draws", help="posterior draws used")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="seed of the draws and simulated outcomes")] = 0,
) -> None:
    """Design the next lift test: candidate tests per channel (and geo set), ranked by preposterior analysis."""
    from bayesmmm.decisions.design import DesignError, design_tests
    from bayesmmm.model.mmm import MMM
    from bayesmmm.reporting.design_page import write_design

    if not run_dir.exists():
        raise DesignError(f"run folder {str(run_dir)!r} does not exist; give a folder written by `bayesmmm fit`")
    mmm = MMM.load(run_dir)
    result = design_tests(
        mmm,
        weeks=weeks,
        max_change=max_change,
        channels=_split(channels),
        geos=_split(geos),
        max_draws=max_draws,
        seed=seed,
    )
    folder = out or (run_dir / "design" if run_dir.is_dir() else run_dir.parent / "design")
    write_design(result, folder, title=run_dir.name)
    table = result.table.drop_duplicates("test").head(5)
    lines = ["", "Best lift tests (ranked by value; all in designs.csv):"]
    for r in table.itertuples(index=False):
        lines.append(
            f"  {r.rank}. {r.channel}: {r.kind.replace('_', ' ')} {r.change:+.0%} for {r.weeks} periods "
            f"({r.start}..{r.end}), expected delta_y {r.expected_delta_y:+,.1f} a period "
            f"(sigma about {r.expected_sigma:,.1f}); ROAS sd {r.roas_sd_now:.3g} -> {r.roas_sd_after:.3g}"
            + ("" if r.ess_ok else " (low ESS: unreliable)")
        )
    _echo("\n".join(lines))
    _echo(f"Wrote {folder / 'designs.csv'} and {folder / 'design.html'}")


def _echo(msg: str = "") -> None:
    """Print to stdout unless -q was given."""
    from bayesmmm.progress import is_quiet

    if not is_quiet():
        typer.echo(msg)


def _split(values: list[str] | None) -> list[str] | None:
    """``--channels a,b --channels c`` → ``[a, b, c]``."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def add_commands(app: typer.Typer) -> None:
    """Add ``design`` to ``app``."""
    app.command()(design)
