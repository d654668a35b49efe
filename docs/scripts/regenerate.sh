#!/usr/bin/env bash
# Regenerate every artefact the docs quote, in one command (`make docs-data`; 3 min 14 s measured on
# 2 shared cores with the engine compiled, more when it must compile first):
#
#     bash docs/scripts/regenerate.sh            # PY=.venv/bin/python by default
#
# 1. `make figures`' command into results/figures (tables, data, PNGs);
# 2. the full theory report (docs/theory-report/, quoted by docs/theory.md);
# 3. the docs/scripts diagnostics, their stdout (or CSVs) saved under docs/figures/data/;
# 4. copies: results/figures/*.png -> docs/figures/, and the small tables the docs quote
#    -> docs/figures/data/ (tests/test_docs_numbers.py reads them; nothing here is re-simulated in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${FIGURES_OUT:-results/figures}
DATA=docs/figures/data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$DATA"

$PY -m experiments figures --trace builtin:smollm2-greedy --drafters pld,rest,suffix,eagle,medusa \
    --serve-drafter eagle --cost-device cuda --out "$OUT" --quiet
$PY -m experiments theory --drafters pld,skip5-24,rtn4,hf-rtn3,early28 --out "$TMP/theory"
$PY docs/scripts/headroom_diagnosis.py 20 > "$DATA/headroom_diagnosis.txt"
$PY docs/scripts/serving_best_k.py eagle > "$DATA/serving_best_k_eagle.txt"
$PY docs/scripts/serving_best_k.py rtn4 > "$DATA/serving_best_k_rtn4.txt"
$PY docs/scripts/acceptance_by_category.py > "$DATA/acceptance_by_category.md"
$PY docs/scripts/paired_differences.py "$OUT/data" "$DATA"
# which draft-length rule for which workload (docs/reproducing.md, "Which rule for which workload"): the
# default drafter (highest mean accepted length, int8) and the weak EAGLE-style head
for d in default eagle; do
    sfx=$([ "$d" = default ] && echo "" || echo "_$d")
    $PY -m experiments engine-rules --trace builtin:smollm2-greedy --cost-device cuda \
        $([ "$d" = default ] || echo "--drafter $d") --out "$TMP/engine-rules$sfx" --quiet > /dev/null
    cp "$TMP/engine-rules$sfx/engine_rules.md" "$DATA/engine_rules$sfx.md"
    cp "$TMP/engine-rules$sfx/engine_rules.png" "docs/figures/engine_rules$sfx.png"
    for f in single serving tuning winners; do cp "$TMP/engine-rules$sfx/$f.csv" "$DATA/engine_rules${sfx}_$f.csv"; done
done
# real GPU logs (docs/reproducing.md, "Real GPU logs"): only where the shared Spec-Bench logs are
LOGS=${SPECBENCH_LOGS:-../shared/data/specbench-logs}
if [ -d "$LOGS" ]; then
    $PY -m experiments specbench --logs "$LOGS" --runs 20 --seed 0 --out "$TMP/specbench" --quiet > /dev/null
    cp "$TMP/specbench/specbench.md" "$DATA/specbench_real.md"
    for f in selection headroom draft_length; do cp "$TMP/specbench/$f.csv" "$DATA/specbench_$f.csv"; done
else
    echo "regenerate: $LOGS absent: docs/figures/data/specbench_* kept as committed" >&2
fi

cp "$OUT"/*.png docs/figures/
rm -rf docs/theory-report && mkdir -p docs/theory-report && cp "$TMP"/theory/* docs/theory-report/
cp "$OUT"/tables/table1.csv "$OUT"/tables/table1.md "$OUT"/tables/chain_vs_tree.md "$DATA"/
for f in bounds.csv arms_scaling.csv survival.csv category_pulls.csv chain_vs_tree.csv config.json \
         serving_config.json replay_config.json; do
    cp "$OUT/data/$f" "$DATA/"
done
# derived tables the docs quote: fitted rates, normalised regret, Figures 5a/6 at the quoted steps, 6b shares
$PY - "$OUT/data" "$DATA" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from experiments.figures import decoding_steps
from experiments.theory_validate import real_instance

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
# the fitted panel's TGD rates (experiments/paper.py: real_instance at the figures' K = 4)
ds = ["pld", "rest", "suffix", "eagle", "medusa"]
rates = real_instance(traces.load("builtin:smollm2-greedy"), ds, 4)
pd.DataFrame({"drafter": ds, "k": 4, "rate": rates}).to_csv(dst / "fitted_rates.csv", index=False)
# UCBSpec's R / log(len) and its ratio to Theorem 4.4's c (fig_normalised_regret's curves)
b = pd.read_csv(src / "bounds.csv")
s = b[b["check"] == "stochastic"][["setting", "policy", "n", "pseudo", "c_thm44"]].copy()
s["r_over_log"] = s["pseudo"] / np.log(s["n"])
s["ratio_to_c"] = s["r_over_log"] / s["c_thm44"]
s.to_csv(dst / "normalised.csv", index=False)
# per stochastic panel: the least upper-bound / regret ratio over the grid, and the first length
# from which the regret stays above c log(len)
summ = []
for name, g in b[b["check"] == "stochastic"].groupby("setting"):
    g = g.sort_values("n")
    below = g.loc[g["regret"] <= g["lower"], "n"]
    summ.append({"setting": name, "min_upper_ratio": (g["upper"] / g["regret"]).min(),
                 "above_lower_from": g.loc[g["n"] > (below.max() if len(below) else 0), "n"].min()})
summ.append({"setting": "all", "min_upper_ratio": min(r["min_upper_ratio"] for r in summ),
             "above_lower_from": max(r["above_lower_from"] for r in summ)})
pd.DataFrame(summ).to_csv(dst / "bounds_summary.csv", index=False)
# Figures 5a / 6a at the steps the docs quote, each policy cut where its figure cuts it
traj = pd.read_csv(src / "trajectories.csv")
rows = []
for pol, g in traj.groupby("policy", sort=False):
    g = decoding_steps(g)
    last = int(g["step"].max())
    for step in sorted({1, 5, 20, 40, 60, last}):
        r = g[g["step"] == step].iloc[0]
        rows.append({"policy": pol, "step": step, "last": step == last, "cum_regret": r["cum_regret"],
                     "lo": r["lo"], "hi": r["hi"], "pulls_suffix": r["frac:suffix@4"],
                     "best_suffix": r["best:suffix@4"]})
pd.DataFrame(rows).to_csv(dst / "steps.csv", index=False)
# Figure 6b: share (%) of each policy's rounds per arm and category
cat = pd.read_csv(src / "category_pulls.csv").set_index(["policy", "category"])
share = (100 * cat.div(cat.sum(axis=1), axis=0)).stack().rename("share_pct").reset_index()
share.rename(columns={share.columns[2]: "arm"}).to_csv(dst / "category_shares.csv", index=False)
EOF
du -sh "$DATA"
# every number docs/reproducing.md and docs/theory.md's check 3 quote, against the new tables:
# a failure names each quoted number that moved (update the prose and docs/figures/data/quoted.json)
$PY -m pytest -q -p no:cacheprovider tests/test_docs_numbers.py
