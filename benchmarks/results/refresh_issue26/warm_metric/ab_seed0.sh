#!/bin/bash
# A/B whole-process timing on seed 0 (existing first fit), alternating, each from a fresh copy of the first fit's cache
cd /work/wt/refresh
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
r=/tmp/rf/study/seed0
for i in 1 2 3; do
  for arm in scratch refresh; do
    rm -rf /tmp/rf/ab_cache /tmp/rf/ab_$arm
    cp -r $r/caches/first /tmp/rf/ab_cache
    if [ $arm = scratch ]; then args="fit $r/experiment.yaml --data $r/data/data.csv -o /tmp/rf/ab_$arm"; else args="refresh $r/first --data $r/data/data.csv -o /tmp/rf/ab_$arm"; fi
    l=$(cut -d' ' -f1 /proc/loadavg)
    s=$(date +%s.%N)
    BAYESMMM_JAX_CACHE=/tmp/rf/ab_cache nice -n 10 /work/main/.venv/bin/python -c "from bayesmmm.cli import run; run()" -q $args > /dev/null 2>&1
    e=$(date +%s.%N)
    t=$(/work/main/.venv/bin/python -c "import json; t=json.load(open('/tmp/rf/ab_$arm/metadata.json'))['timings']; print(t['compile_s'], t['sample_s'], t['postprocess_s'])")
    echo "$i $arm load=$l wall=$(echo "$e - $s" | bc) compile/sample/post=$t"
  done
done
