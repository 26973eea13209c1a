"""Workflows that run fits: experiments, functional-form selection, Dask sweeps, simulation, benchmarks.

- :mod:`bayesmmm.workflows.experiment`: one experiment YAML → one run folder (:func:`run_experiment`);
- :mod:`bayesmmm.workflows.selection`: candidate forms ranked by LOO / WAIC / BIC / hold-out;
- :mod:`bayesmmm.workflows.sweep`: grids of experiments on a Dask cluster;
- :mod:`bayesmmm.workflows.distributed`: the Dask client and task runner they share;
- :mod:`bayesmmm.workflows.simulate`: data with known ground truth;
- :mod:`bayesmmm.workflows.bench`: sampler benchmark suites.
"""
