import sys, pandas as pd, numpy as np
t = pd.read_csv(sys.argv[1])
ex = t[t.arm=="refresh"].set_index(["seed","channel"])
for arm in ["refresh_joint","refresh_prior","scratch"]:
    a = t[t.arm==arm].set_index(["seed","channel"])
    sd = ex["new_hdi_width"]/(2*1.645)
    z = (a["new_roas"]-ex["new_roas"]).abs()/sd
    r = a["new_hdi_width"]/ex["new_hdi_width"]
    print(arm, "|mean - exact| / exact sd: median %.2f max %.2f; HDI ratio median %.2f range %.2f-%.2f" % (z.median(), z.max(), r.median(), r.min(), r.max()))
ps = t.groupby(["seed","arm"])["move"].median().unstack()
print(ps.round(3))
print(t.groupby(["seed","arm"])["max_rhat"].first().unstack().round(4))
