"""Each refresh arm against the exact refresh: ``python against_exact.py RESULTS.csv`` (refresh_study.py's rows).

Distance of each channel's posterior-mean ROAS from the exact refresh's, in the exact posterior's sd (its 90% HDI
width / 3.29), and the ratio of the 90% HDI widths; then the median move and the max R-hat per data set and arm.
"""

import sys

import pandas as pd

t = pd.read_csv(sys.argv[1])
exact = t[t.arm == "refresh"].set_index(["seed", "channel"])
sd = exact["new_hdi_width"] / (2 * 1.645)
for arm in ["refresh_joint", "refresh_prior", "scratch"]:
    a = t[t.arm == arm].set_index(["seed", "channel"])
    z = (a["new_roas"] - exact["new_roas"]).abs() / sd
    r = a["new_hdi_width"] / exact["new_hdi_width"]
    print(
        f"{arm} |mean - exact| / exact sd: median {z.median():.2f} max {z.max():.2f}; "
        f"HDI ratio median {r.median():.2f} range {r.min():.2f}-{r.max():.2f}"
    )
print(t.groupby(["seed", "arm"])["move"].median().unstack().round(3))
print(t.groupby(["seed", "arm"])["max_rhat"].first().unstack().round(4))
