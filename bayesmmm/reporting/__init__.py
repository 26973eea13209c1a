"""Reporting: figures (:mod:`bayesmmm.reporting.plots`) and the HTML report (:mod:`bayesmmm.reporting.report`)."""
