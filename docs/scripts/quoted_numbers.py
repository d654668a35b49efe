"""Writes docs/figures/data/quoted.json, the map tests/test_docs_numbers.py checks: for each
checked section of docs/reproducing.md and docs/theory.md, the numbers it may say without a
source (``literals``: settings such as run counts, section and theorem numbers, pre-issue-15
values quoted as history) and, for every other number, the quoted text and where it comes
from (a committed table under docs/figures/data/ or docs/theory-report/ with a row filter, a
column, a scale and a format; a regular expression over a saved script output; or ``op`` of
two such values).

After `bash docs/scripts/regenerate.sh` moves a number: change it in the doc and here, then

    .venv/bin/python docs/scripts/quoted_numbers.py
"""

import json
import re
from pathlib import Path

Q = []
SECTIONS = []
D = "docs/figures/data/"
HEAD = None


def sec(doc, head, literals, end=None):
    global HEAD
    HEAD = head
    s = {"doc": doc, "head": head, "literals": literals}
    if end:
        s["end"] = end
    SECTIONS.append(s)


def q(text, **spec):
    Q.append({"head": HEAD, "text": text, **spec})


def rx(file, regex, fmt=None):
    s = {"file": file, "regex": regex}
    if fmt:
        s["format"] = fmt
    return s


# ---- theory.md, check 3
sec("docs/theory.md", "* **Check 3 (real instances).**", ["3", "4", "1", "15", "0.64", "0.79", "0.82", "0.47", "0.61",
                                                          "4.1"], end="* **Check 4")
R = "docs/theory-report/report.md"
for d in ("pld", "skip5-24", "rtn4", "hf-rtn3", "early28"):
    m = rx(R, r"Real-trace instance.*?" + re.escape(d) + r" (\d+\.\d+)")
    q({"pld": "0.376", "skip5-24": "0.726", "rtn4": "0.770", "hf-rtn3": "0.395", "early28": "0.576"}[d], **m)
C = "docs/theory-report/checks.csv"
tgd = {"check": "3-upper", "setting": "smollm2-greedy-fitted-tgd-L4", "policy": "ucbspec", "n": 100000}
q("281", file=C, where=tgd, column="value", format="{:.0f}")
q("3520", file=C, where=tgd, column="bound", format="{:.0f}")
low = {"check": "3-lower", "setting": "smollm2-greedy-fitted-tgd-L4", "policy": "ucbspec"}
q("52", file=C, where=low, column="value", format="{:.0f}")
q("41", file=C, where=low, column="lo", format="{:.0f}")
q("64", file=C, where=low, column="hi", format="{:.0f}")
q("9.7", file=C, where=low, column="bound", format="{:.1f}")
ac = {"check": "3-upper", "setting": "smollm2-greedy-fitted-autocorrelated-L4", "policy": "ucbspec", "n": 100000}
q("288", file=C, where=ac, column="value", format="{:.0f}")
acl = {"check": "3-lower", "setting": "smollm2-greedy-fitted-autocorrelated-L4", "policy": "ucbspec"}
q("52", file=C, where=acl, column="value", format="{:.0f}")
q("39", file=C, where=acl, column="lo", format="{:.0f}")
q("64", file=C, where=acl, column="hi", format="{:.0f}")
cs = {"check": "3-upper", "setting": "smollm2-greedy-category-switch", "policy": "exp3spec"}
q("10,296", file=C, where=cs, column="n", format="{:,.0f}")
q("160", file=C, where=cs, column="value", format="{:.0f}")
q("18", file=C, where=cs, column="ci95", format="{:.0f}")
q("1812", file=C, where=cs, column="bound", format="{:.0f}")
q("120", file=C, where={"check": "3-vs-thm5.3", "setting": "smollm2-greedy-category-switch"}, column="value",
  format="{:.0f}")

# ---- reproducing.md, diagnosis
sec("docs/reproducing.md", "## Diagnosis: headroom", ["20", "84", "0.5", "4", "6", "15.2", "0", "1", "95"])
H = D + "headroom_diagnosis.txt"
TL, TC = "== objective time, learning per prompt", "== objective time, state carried"
RL, RC = "== objective rounds, learning per prompt", "== objective rounds, state carried"


def h(block, pat, fmt=None):
    return rx(H, re.escape(block) + r".*?" + pat, fmt)


q("128.1", **h(TL, r"vanilla ([\d.]+)"))
q("195.2", **h(TL, r"arm suffix@4 ([\d.]+)"))
q("196.7", **h(TL, r"oracle ([\d.]+)"))
q("228.3", **h(TL, r"switcher ([\d.]+)"))
q("242.6", file=D + "table1.csv", where={"kind": "reference", "category": "overall"}, column="tps", format="{:.1f}")
q("1.723", **h(RL, r"suffix@4 ([\d.]+)"))
q("1.754", **h(RL, r"oracle ([\d.]+)"))
q("2.078", **h(RL, r"switcher ([\d.]+)"))
q("17", op="pct_over", a=h(TL, r"switcher ([\d.]+)"), b=h(TL, r"arm suffix@4 ([\d.]+)"), format="{:.0f}")
q("21", op="pct_over", a=h(RL, r"switcher ([\d.]+)"), b=h(RL, r"arm suffix@4 ([\d.]+)"), format="{:.0f}")
q("57", **h(TL, r"under suffix@4: median (\d+)"))
q("24", **h(TL, r"under suffix@4: median \d+ \(IQR (\d+)"))
q("106", **h(TL, r"under suffix@4: median \d+ \(IQR \d+-(\d+)"))
q("11", **h(TL, r"per arm \(5 arms\): median (\d+)"))
q("5", **h(TL, r"per arm \(5 arms\): median \d+ \(IQR (\d+)"))
q("21", **h(TL, r"per arm \(5 arms\): median \d+ \(IQR \d+-(\d+)"))
q("0.08", **h(RL, r"second arm \(tokens/round\): median ([\d.]+)"))
q("0.02", **h(RL, r"second arm \(tokens/round\): median [\d.]+ \(IQR ([\d.]+)"))
q("0.20", **h(RL, r"second arm \(tokens/round\): median [\d.]+ \(IQR [\d.]+-([\d.]+)"))
q("3.12", **h(RL, r"equal pulls: median ([\d.]+)"))
q("27", **h(RL, r"ucbspec (\d+)%"))
q("30", **h(TL, r"ucbspec (\d+)%"))
q("20", **h(RL, r"uniform (\d+)%"))
S = r"([+-][\d.]+)"
for block, pol, texts, fmt in (
        (TL, "ucbspec", ("+96.1", "+80.5", "+113.1", "55"), "{:+.1f}"),
        (TL, "exp3spec", ("+135.1", "+109.5", "+161.4", "46"), "{:+.1f}"),
        (TL, "hedgespec", ("+266.1", "+218.6", "+315.1", "15"), "{:+.1f}"),
        (TL, "uniform", ("+178.8", "+143.9", "+215.1", "36"), "{:+.1f}"),
        (RL, "ucbspec", ("+5.06", "+3.70", "+6.50", "73"), "{:+.2f}"),
        (RL, "exp3spec", ("+7.36", "+5.51", "+9.25", "69"), "{:+.2f}"),
        (RL, "hedgespec", ("+2.15", "+1.36", "+2.89", "78"), "{:+.2f}"),
        (RL, "uniform", ("+10.49", "+7.84", "+13.31", "64"), "{:+.2f}"),
        (TC, "ucbspec", ("+32.5", "+18.9", "+48.1", "71"), "{:+.1f}"),
        (TC, "exp3spec", ("+46.7", "+32.5", "+62.9", None), "{:+.1f}"),
        (TC, "hedgespec", ("+223.8", "+182.2", "+268.3", None), "{:+.1f}"),
        (RC, "ucbspec", ("+1.50", "+0.63", "+2.39", None), "{:+.2f}"),
        (RC, "exp3spec", ("+3.33", "+2.30", "+4.51", None), "{:+.2f}"),
        (RC, "hedgespec", ("−0.05", "−0.34", "+0.18", None), "{:+.2f}")):
    line = re.escape(pol) + r" +vs suffix@4: "
    q(texts[0], **h(block, line + S, fmt))
    q(texts[1], **h(block, line + r"\S+ \S+ \[" + S, fmt))
    q(texts[2], **h(block, line + r"\S+ \S+ \[\S+ " + S, fmt))
    if texts[3]:
        q(texts[3], **h(block, line + r".*?gain% ([\d.]+)", "{:.0f}"))
q("91", **h(RC, r"hedgespec (\d+)%"))


# ---- reproducing.md, Table 1 prose (the table block itself: test_table1_block_equals_...)
T1 = D + "table1.csv"


def t1(text, method, col, fmt, cat="overall"):
    q(text, file=T1, where={"method": method, "category": cat}, column=col, format=fmt)


sec("docs/reproducing.md", "## Table 1", ["1", "6.1", "84", "20", "8", "7", "2", "0", "4", "15.2", "256", "75", "0.99",
                                         "100"])
U, SUF, SW, OR = "ucbspec [throughput]", "fixed:suffix@4", "[per-round switcher] [time]", "oracle [time]"
t1("157.5", U, "tps_lo", "{:.1f}")
t1("182.5", U, "tps_hi", "{:.1f}")
t1("181.7", SUF, "tps_lo", "{:.1f}")
t1("211.8", SUF, "tps_hi", "{:.1f}")
t1("98.3", U, "d_fixed", "{:+.1f}")
t1("80.7", U, "d_fixed_lo", "{:+.1f}")
t1("117.0", U, "d_fixed_hi", "{:+.1f}")
t1("195.2", SUF, "tps", "{:.1f}")
t1("178.1", SUF, "tps", "{:.1f}", cat="overall w/o degenerate")
t1("1.52", SUF, "speedup", "{:.2f}")
q("6.1", file=T1, where={"method": OR, "category": "overall"}, column="d_fixed", format="{:.1f}", scale=-1.0)
q("3.7", file=T1, where={"method": OR, "category": "overall"}, column="d_fixed_hi", format="{:.1f}", scale=-1.0)
q("8.9", file=T1, where={"method": OR, "category": "overall"}, column="d_fixed_lo", format="{:.1f}", scale=-1.0)
q("1", op="pct_over", a={"file": T1, "where": {"method": OR, "category": "overall"}, "column": "tps"},
  b={"file": T1, "where": {"method": SUF, "category": "overall"}, "column": "tps"}, format="{:.0f}")
q("122.8", file=T1, where={"method": SW, "category": "overall"}, column="d_fixed", format="{:.1f}", scale=-1.0)
q("101.7", file=T1, where={"method": SW, "category": "overall"}, column="d_fixed_hi", format="{:.1f}", scale=-1.0)
q("146.0", file=T1, where={"method": SW, "category": "overall"}, column="d_fixed_lo", format="{:.1f}", scale=-1.0)
t1("242.6", SW, "tps", "{:.1f}")
q("24", op="pct_over", a={"file": T1, "where": {"method": SW, "category": "overall"}, "column": "tps"},
  b={"file": T1, "where": {"method": SUF, "category": "overall"}, "column": "tps"}, format="{:.0f}")
t1("73", SUF, "gain_pct", "{:.0f}")
t1("74", OR, "gain_pct", "{:.0f}")
t1("53", "smartspec [tokens]", "gain_pct", "{:.0f}")
t1("51", U, "gain_pct", "{:.0f}")
t1("1.32", U, "speedup", "{:.2f}")
t1("1.29", "ucbspec:reward=tokens", "speedup", "{:.2f}")
t1("1.67", "hedgespec", "mat", "{:.2f}")
t1("1.07", "hedgespec", "speedup", "{:.2f}")

# ---- reproducing.md, regret against output length (stochastic and the three adversarial panels)
B = D + "bounds.csv"
FR = D + "fitted_rates.csv"
sec("docs/reproducing.md", "## Regret against output length", [
    "4", "0.45", "0.65", "0.85", "0.75", "0.8", "4.3", "4.4", "300", "10", "6", "200", "5.3", "1", "95", "40",
    "5", "3", "290", "409", "0.64", "0.42", "0.71", "0.19", "15", "1", "2"])
for d, txt in (("pld", "0.38"), ("rest", "0.18"), ("suffix", "0.43"), ("eagle", "0.18"), ("medusa", "0.16")):
    q(txt, file=FR, where={"drafter": d}, column="rate", format="{:.2f}")


def bq(text, setting, policy, n, col, fmt="{:.0f}", scale=1.0):
    q(text, file=B, where={"setting": setting, "policy": policy, "n": n}, column=col, format=fmt, scale=scale)


for st, n, vals in (("fitted-smollm2-greedy", 98506, ("1020", "23", "13751", "176")),
                    ("fitted-smollm2-greedy", 1000000, ("1651", "66", "15980", "211")),
                    ("tgd-large-gap", 98506, ("66", "9", "627", "21")),
                    ("tgd-large-gap", 1000000, ("77", "32", "736", "25")),
                    ("tgd-small-gap", 98506, ("163", "10", "2095", "66")),
                    ("tgd-small-gap", 1000000, ("242", "33", "2447", "80"))):
    for txt, col in zip(vals, ("regret", "ci95", "upper", "lower"), strict=True):
        bq(txt, st, "ucbspec", n, col)
q("9.5", file=D + "bounds_summary.csv", where={"setting": "all"}, column="min_upper_ratio", format="{:.1f}")
q("5,436", file=D + "bounds_summary.csv", where={"setting": "all"}, column="above_lower_from", format="{:,.0f}")
q("3.5", op="ratio", a={"file": B, "where": {"setting": "fitted-smollm2-greedy", "n": 98506}, "column": "regret"},
  b={"file": D + "quoted_baseline.csv", "where": {"name": "fitted_1e5_before_issue15"}, "column": "value"},
  format="{:.1f}")
q("4.0", op="ratio", a={"file": B, "where": {"setting": "fitted-smollm2-greedy", "n": 1000000}, "column": "regret"},
  b={"file": D + "quoted_baseline.csv", "where": {"name": "fitted_1e6_before_issue15"}, "column": "value"},
  format="{:.1f}")
bq("−809", "piecewise-oblivious", "exp3spec", 100000, "regret")
bq("283", "piecewise-oblivious", "exp3spec", 100000, "ci95")
bq("−2728", "piecewise-oblivious", "ucbspec", 100000, "regret")
bq("2724", "piecewise-oblivious", "ucbspec", 100000, "upper")
bq("56", "sqrt-burst", "exp3spec", 100000, "regret")
bq("2", "sqrt-burst", "exp3spec", 100000, "ci95")
bq("0.51", "sqrt-burst", "exp3spec", 100000, "slope", "{:.2f}")
bq("0.48", "sqrt-burst", "exp3spec", 100000, "slope_lo", "{:.2f}")
bq("0.53", "sqrt-burst", "exp3spec", 100000, "slope_hi", "{:.2f}")
bq("69", "sqrt-burst", "ucbspec", 100000, "regret")
bq("1573", "sqrt-burst", "ucbspec", 100000, "upper")
bq("5001", "ucb-trap", "ucbspec", 100000, "regret")
bq("1.00", "ucb-trap", "ucbspec", 100000, "slope", "{:.2f}")
bq("0.98", "ucb-trap", "ucbspec", 100000, "slope_lo", "{:.2f}")
bq("1.03", "ucb-trap", "ucbspec", 100000, "slope_hi", "{:.2f}")
bq("2087", "ucb-trap", "ucbspec", 100000, "upper")
bq("462", "ucb-trap", "exp3spec", 100000, "regret")
bq("1225", "ucb-trap", "exp3spec", 100000, "ci95")

# ---- normalised regret
sec("docs/reproducing.md", "## Normalised regret", ["4.4", "36", "200", "4.5", "10", "6", "5", "2"])
for st, n, txt in (("fitted-smollm2-greedy", 1000000, "118.8"), ("tgd-large-gap", 1000000, "6.1"),
                   ("tgd-small-gap", 1000000, "18.1"), ("tgd-large-gap", 98506, "5.7"),
                   ("fitted-smollm2-greedy", 98506, "88.0")):
    q(txt, file=D + "normalised.csv", where={"setting": st, "n": n}, column="r_over_log", format="{:.1f}")
for st, txt in (("fitted-smollm2-greedy", "15.3"), ("tgd-large-gap", "1.8"), ("tgd-small-gap", "5.8")):
    bq(txt, st, "ucbspec", 1000000, "c_thm44", "{:.1f}")
for st, txt in (("tgd-small-gap", "3.2"), ("tgd-large-gap", "3.3"), ("fitted-smollm2-greedy", "7.8")):
    q(txt, file=D + "normalised.csv", where={"setting": st, "n": 1000000}, column="ratio_to_c", format="{:.1f}")

# ---- Figure 5b
A = D + "arms_scaling.csv"
sec("docs/reproducing.md", "## Figure 5b", ["2", "16", "4", "3", "5", "1", "5b"])
for pol, vals in (("hedgespec", ("0.77", "2.53", "2.55")), ("ucbspec", ("1.50", "9.59", "24.51")),
                  ("exp3spec", ("3.59", "11.47", "24.26")), ("uniform", ("7.18", "16.57", "33.24"))):
    for m, txt in zip((2, 5, 16), vals, strict=True):
        q(txt, file=A, where={"drafters": m, "policy": pol}, column="regret", format="{:.2f}")
for pol, vals in (("hedgespec", ("111.0", "94.4", "76.2")), ("ucbspec", ("121.3", "121.1", "127.1"))):
    for m, txt in zip((2, 5, 16), vals, strict=True):
        q(txt, file=A, where={"drafters": m, "policy": pol}, column="tps", format="{:.1f}")

# ---- Figure 7
V = D + "survival.csv"
sec("docs/reproducing.md", "## Figure 7", ["1", "4", "8", "16", "7"])
for d, vals in (("int8", ("0.94", "0.80", "0.66")), ("rtn4", ("0.79", "0.46", "0.28")),
                ("skip5-24", ("0.74", "0.38", "0.21")), ("early28", ("0.58", "0.14", "0.04")),
                ("suffix", ("0.48", "0.27", "0.21")), ("pld", ("0.40", "0.21", "0.13")),
                ("rest", ("0.19", "0.08", "0.05")), ("eagle", ("0.19", "0.00", "0.00")),
                ("medusa", ("0.19", "0.00", "0.00"))):
    for i, txt in zip((1, 4, 8), vals, strict=True):
        q(txt, file=V, where={"drafter": d, "i": i}, column="survival", format="{:.2f}")

AC = D + "acceptance_by_category.md"
HEAD = "## Table 1"
q("0.23", **rx(AC, r"\| medusa@4 \|[^\n]*\| (\d\.\d+) \|\n"))
q("0.24", **rx(AC, r"\| eagle@4 \|[^\n]*\| (\d\.\d+) \|\n"))
P1 = D + "table1_pairs.csv"


def pq(file, name, texts, fmt, scale=1.0):
    for txt, col in zip(texts, ("value", "lo", "hi"), strict=True):
        if txt is not None:
            q(txt, file=file, where={"name": name}, column=col, format=fmt, scale=scale)


pq(P1, "ucbspec - exp3spec", ("42.7", "58.0", "27.8"), "{:.1f}", -1.0)
pq(P1, "ucbspec:width=per-arm - suffix@4", ("71.7", "58.0", "86.6"), "{:.1f}")
pq(P1, "ucbspec:width=per-arm speedup", ("1.37", None, None), "{:.2f}")
pq(P1, "hedgespec - ucbspec", ("167.7", "135.7", "202.3"), "{:.1f}")

# ---- draft length (make demo's second command)
DL = D + "draft_length.csv"
sec("docs/reproducing.md", "## Draft-length choice", ["6.2", "84", "50", "1", "2", "3", "4", "0", "15.2"])
for arm, txt in (("plain@0", "128.1"), ("eagle@1", "128.4"), ("eagle@2", "116.4"), ("eagle@3", "111.9"),
                 ("eagle@4", "101.7")):
    pq(DL, f"{arm} tps", (txt, None, None), "{:.1f}")
q("0.2", **rx(AC, r"\| eagle@4 \|[^\n]*\| (\d\.\d+) \|\n"), format="{:.1f}")
pq(DL, "oracle tps", ("132.0", None, None), "{:.1f}")
pq(DL, "banditspec-code tps", ("128.4", "126.0", "130.6"), "{:.1f}")
pq(DL, "ucbspec tps", ("123.6", "121.8", "125.5"), "{:.1f}")
pq(DL, "ucb1 tps", ("122.5", None, None), "{:.1f}")
pq(DL, "exp3spec tps", ("121.1", None, None), "{:.1f}")
pq(DL, "ucbspec:width=per-arm tps", ("119.7", "116.7", "122.8"), "{:.1f}")
pq(DL, "uniform tps", ("116.3", None, None), "{:.1f}")
pq(DL, "ucbspec - uniform", ("−61.9", "−73.6", "−50.5"), "{:+.1f}")
pq(DL, "ucbspec - ucbspec:width=per-arm", ("−32.5", "−50.8", "−15.9"), "{:+.1f}")
pq(DL, "ucbspec - banditspec-code", ("+36.8", "+27.8", "+46.6"), "{:+.1f}")
pq(DL, "banditspec-code - eagle@1", ("+0.20", "0.00", "+0.59"), "{:+.2f}")
pq(DL, "banditspec-code - uniform", ("−98.7", "−115.7", "−82.6"), "{:+.1f}")
pq(DL, "oracle share plain@0", ("57", None, None), "{:.0f}")
pq(DL, "ucbspec share plain@0", ("29", None, None), "{:.0f}")
pq(DL, "ucbspec:width=per-arm share plain@0", ("0.01", None, None), "{:.2f}")
q("4", op="pct_over", a={"file": DL, "where": {"name": "eagle@1 tps"}, "column": "value"},
  b={"file": DL, "where": {"name": "ucbspec tps"}, "column": "value"}, format="{:.0f}")

# ---- Figure 3 (and "what moves the best k")
SP = D + "serving_pairs.csv"
SC = D + "serving_config.json"
sec("docs/reproducing.md", "## Figure 3", ["3", "4", "6.2", "1", "50", "16", "0", "15.2", "95", "21", "2"])
for m, txt in (("eagle@1", "0.980"), ("eagle@2", "0.852"), ("eagle@3", "0.821"), ("eagle@4", "0.735"),
               ("banditspec-code", "0.972"), ("ucbspec", "0.877"), ("ucb1", "0.875"), ("uniform", "0.864"),
               ("ucbspec:width=per-arm", "0.801")):
    pq(SP, f"{m} mean", (txt, None, None), "{:.3f}")
pq(SP, "best arm in hindsight mean", ("1.001", None, None), "{:.3f}")
pq(SP, "best arm is plain@0 at sizes", ("44", None, None), "{:.0f}")
pq(SP, "ucbspec - uniform", ("+0.013", "+0.012", "+0.014"), "{:+.3f}")
pq(SP, "ucbspec - eagle@1", ("−0.103", "−0.103", "−0.102"), "{:+.3f}")
pq(SP, "banditspec-code - eagle@1", ("−0.008", "−0.009", "−0.008"), "{:+.3f}")
pq(SP, "eagle@1 - plain@0", ("−0.020", "−0.022", "−0.018"), "{:+.3f}")
pq(SP, "ucbspec:width=per-arm - uniform", ("−0.063", "−0.064", "−0.062"), "{:+.3f}")
pq(SP, "batch sizes above the measured table", ("34", None, None), "{:.0f}")
KE, KR = D + "serving_best_k_eagle.txt", D + "serving_best_k_rtn4.txt"
q("1.002", **rx(KE, r"n =  1: MAT_k c0 / c_k for k = 0..4: \[1.0, ([\d.]+)"))
q("0.909", **rx(KE, r"n =  1: MAT_k c0 / c_k for k = 0..4: \[1.0, [\d.]+, ([\d.]+)"))
q("1.039", **rx(KE, r"n = 50: MAT_k c0 / c_k for k = 0..4: \[1.0, ([\d.]+)"))
q("0.846", **rx(KE, r"n = 50: MAT_k c0 / c_k for k = 0..4: \[1.0, [\d.]+, ([\d.]+)"))
q("1.450", **rx(KR, r"n = 50: MAT_k c0 / c_k for k = 0..4: \[1.0, [\d.]+, [\d.]+, ([\d.]+)"), format="{:.3f}")
q("1.360", **rx(KR, r"n = 50: MAT_k c0 / c_k for k = 0..4: \[1.0, ([\d.]+)"), format="{:.3f}")

for i, txt in enumerate(("2", "4", "6", "8", "10", "12"), start=1):
    pq(SP, f"eagle@1 best at size #{i}", (txt, None, None), "{:.0f}")


# ---- chain or tree (committed chain_vs_tree.csv; the batch-size paragraph: tree_serving.csv)
CT, TS = D + "chain_vs_tree.csv", D + "tree_serving.csv"
sec("docs/reproducing.md", "## Chain or tree?", ["1", "8", "4", "2", "63", "16", "44", "50", "3"])


def ct(text, drafter, col, fmt):
    q(text, file=CT, where={"drafter": drafter, "category": "overall"}, column=col, format=fmt)


for d, vals in (("suffix", ("210.3", "186.3", "+75.1", "+54.5", "+98.2")),
                ("rest", ("143.9", "138.5", None, None, None)),
                ("eagle", ("128.4", "126.6", "+13.8", "−0.2", "+26.7")),
                ("medusa", ("110.7", "116.2", "−52.3", "−77.8", "−34.3"))):
    for txt, col, fmt in zip(vals, ("chain_tps", "tree_tps", "tree_minus_chain_ms", "diff_lo", "diff_hi"),
                             ("{:.1f}", "{:.1f}", "{:+.1f}", "{:+.1f}", "{:+.1f}"), strict=True):
        if txt is not None:
            ct(txt, d, col, fmt)


def ts(text, drafter, method, b):
    q(text, file=TS, where={"drafter": drafter, "method": method, "batch_size": b}, column="improvement",
      format="{:.3f}")


ts("1.618", "rtn4", "rtn4@3", 1)
ts("1.597", "rtn4", "rtn4@tree:2x2", 1)
ts("1.543", "rtn4", "rtn4@tree:2x2", 2)
ts("1.489", "rtn4", "rtn4@tree:2x2", 4)
ts("1.511", "rtn4", "rtn4@3", 2)
ts("1.475", "rtn4", "rtn4@3", 4)
ts("1.459", "rtn4", "rtn4@3", 8)
ts("1.423", "rtn4", "rtn4@tree:2x2", 8)
ts("1.337", "rtn4", "rtn4@3", 50)
ts("1.105", "rtn4", "rtn4@tree:2x2", 50)
ts("1.400", "rtn4", "rtn4@tree:3x2x1", 1)
ts("0.907", "eagle", "eagle@tree:2x2", 0)
ts("0.990", "eagle", "eagle@1", 0)


# ---- Figure 5a and Figure 6 (steps.csv: trajectories at the quoted steps; category_shares.csv)
ST, CS = D + "steps.csv", D + "category_shares.csv"
sec("docs/reproducing.md", "## Figure 5a", ["5", "84", "20", "95", "25", "4"])


def sq(text, pol, col, fmt, step=None):
    where = {"policy": pol, "last": "True"} if step is None else {"policy": pol, "step": step}
    q(text, file=ST, where=where, column=col, format=fmt)


for pol, vals in (("hedgespec", ("8.1", "7.1", "9.2", "112")), ("ucbspec", ("16.4", "13.9", "19.4", "127")),
                  ("exp3spec", ("22.0", "17.7", "26.9", "130")), ("uniform", ("33.9", "25.2", "44.0", "138"))):
    for txt, col, fmt in zip(vals, ("cum_regret", "lo", "hi", "step"), ("{:.1f}", "{:.1f}", "{:.1f}", "{:.0f}"),
                             strict=True):
        sq(txt, pol, col, fmt)
for pol, txt in (("hedgespec", "3.1"), ("ucbspec", "6.3"), ("exp3spec", "5.1"), ("uniform", "6.2")):
    sq(txt, pol, "cum_regret", "{:.1f}", step=20)

sec("docs/reproducing.md", "## Figure 6", ["6", "1", "20", "40", "60", "25", "5"])
for step, txt in ((1, "0.48"), (20, "0.58"), (40, "0.70"), (60, "0.85")):
    sq(txt, "hedgespec", "best_suffix", "{:.2f}", step=step)
sq("0.91", "hedgespec", "best_suffix", "{:.2f}")
sq("112", "hedgespec", "step", "{:.0f}")
for step, txt in ((5, "0.21"), (20, "0.27"), (40, "0.29"), (60, "0.38")):
    sq(txt, "hedgespec", "pulls_suffix", "{:.2f}", step=step)
sq("0.59", "hedgespec", "pulls_suffix", "{:.2f}")
sq("0.38", "ucbspec", "pulls_suffix", "{:.2f}")
sq("0.90", "ucbspec", "best_suffix", "{:.2f}")
sq("127", "ucbspec", "step", "{:.0f}")
sq("0.29", "exp3spec", "pulls_suffix", "{:.2f}")
sq("0.93", "exp3spec", "best_suffix", "{:.2f}")
sq("130", "exp3spec", "step", "{:.0f}")


def cq(text, pol, cat, arm):
    q(text, file=CS, where={"policy": pol, "category": cat, "arm": arm}, column="share_pct", format="{:.0f}")


cq("70", "oracle", "rag", "suffix@4")
cq("95", "oracle", "chat", "suffix@4")
cq("66", "oracle", "summarization", "pld@4")
cq("63", "oracle", "translation", "plain@0")
cq("18", "ucbspec", "translation", "suffix@4")
cq("30", "ucbspec", "extraction", "suffix@4")
cq("14", "ucbspec", "translation", "eagle@4")


# ---- theory.md, the full run's row counts (wall times are literals: they vary run to run)
sec("docs/theory.md", "## Measurements",
    ["0", "256", "15", "140", "29", "2", "1", "3", "40", "5", "24", "34", "100", "9", "200"], end="* **Check 1")
FIELDS = ("rows:", "pass,", "fail,", "vacuous,", "info")
for i, txt in enumerate(("181", "121", "0", "25", "35")):
    parts = [(r"(\d+) " if j == i else r"\d+ ") + re.escape(f) for j, f in enumerate(FIELDS)]
    q(txt, **rx(R, r"Mode: full; " + " ".join(parts)))

# ---- reproducing.md, real GPU logs (python -m experiments specbench on ../shared/data/specbench-logs)
sec("docs/reproducing.md", "## Real GPU logs", ["1", "4", "8", "50", "68", "95", "1.3"])
SB = D + "specbench_real.md"
q("49", **rx(SB, r"## multiclass_product_classification.*?fastest per question eagle (\d+)/"))
q("25", **rx(SB, r"## sentiment_analysis.*?hydra (\d+)/50"))
q("18", **rx(SB, r"## sentiment_analysis.*?fastest per question eagle (\d+)/"))
q("7", **rx(SB, r"## sentiment_analysis.*?vanilla (\d+)/50"))
q("1.44", **rx(SB, r"## sentiment_analysis.*?per-question best (\d+\.\d+) %"))
for s_, v in (("multiclass_product_classification", "151.1"), ("query_product_rank", "302.6"),
              ("sentiment_analysis", "34.4")):
    q(v, **rx(SB, r"\| " + s_ + r" \| 50 \| 50 \| eagle@5 \| \+(\d+\.\d) "))
q("19.80", **rx(SB, r"Step cost\(k\) = (\d+\.\d+) \+"))
q("3.07", **rx(SB, r"Step cost\(k\) = [\d.]+ \+ (\d+\.\d+) x k"))
q("15.21", **rx(SB, r"uncertainty \(largest relative 95 % half-width of a cost row, from the fit's residuals\) "
                    r"(\d+\.\d+) %"))
q("3", **rx(SB, r"Δ vs best fixed sps@(\d+)"))
q("211.4", **rx(SB, r"## Draft length.*?\| heuristic:drafter=sps \[tokens\] \|[^\n]*?\| \+(\d+\.\d) \["))
q("1063.7", **rx(SB, r"## Draft length.*?\| ucbspec \[throughput\] \|[^\n]*?\| \+(\d+\.\d) \["))
q("−1.5", **rx(SB, r"## Draft length.*?\| sglang-adaptive:drafter=sps \[tokens\] \|[^\n]*?\| (-\d+\.\d) \["))
q("109.2", **rx(SB, r"## Draft length.*?\| oracle:time \|[^\n]*?\| -(\d+\.\d) \["))

# ---- reproducing.md, which rule for which workload (python -m experiments engine-rules, two drafters)
sec("docs/reproducing.md", "## Which rule for which workload",
    ["84", "42", "1", "2", "4", "8", "16", "32", "10", "140", "19", "0", "7"])
TUNED, DEFAULT = "engine rule, tuned on the tune half", "engine rule, default"
BEST = "best fixed arm (hindsight, report half)"


def er(text, sfx, table, method, role, col, fmt):
    """A cell of engine_rules{sfx}_{table}.csv (the report half), by role and, unless None, method."""
    where = {"role": role} if method is None else {"method": method, "role": role}
    q(text, file=f"{D}engine_rules{sfx}_{table}.csv", where=where, column=col, format=fmt)


q("6.16", **rx(D + "engine_rules.md", r"largest K <= 8: (\d+\.\d+)"))
er("284.3", "", "single", None, BEST, "tps", "{:.1f}")
for sfx, rows in (("", (("heuristic", DEFAULT, ("+6.3", "+1.5", "+10.9")),
                        ("sglang-adaptive", DEFAULT, ("+6.5", "+1.9", "+11.9")),
                        ("vllm-adaptive-k", DEFAULT, ("+14.6",)), ("trtllm-schedule", DEFAULT, ("+14.6",)),
                        ("vllm-batch-table", DEFAULT, ("+18.0",)), ("llamacpp-adaptive", DEFAULT, ("+67.5",)))),
                  ("_eagle", (("llamacpp-adaptive", DEFAULT, ("+0.0",)), ("sglang-adaptive", DEFAULT, ("+12.6",)),
                              ("heuristic", DEFAULT, ("+35.9",)), ("trtllm-schedule", DEFAULT, ("+632.1",)),
                              ("vllm-batch-table", DEFAULT, ("+317.0",))))):
    for rule, role, texts in rows:
        for t, col in zip(texts, ("d_fixed", "d_fixed_lo", "d_fixed_hi"), strict=False):
            er(t, sfx, "single", f"{rule}:drafter={'int8' if not sfx else 'eagle'}" + (
                "" if rule in ("trtllm-schedule", "vllm-batch-table") else " [tokens]"), role, col, "{:+.1f}")
S = "engine_rules_single.csv"
q("+11.0", file=D + S, where={"method": "vllm-adaptive-k:c_draft=0.2,drafter=int8 [tokens]", "role": TUNED},
  column="d_fixed", format="{:+.1f}")
q("+65.3", file=D + S, where={"role": TUNED, "method": "llamacpp-adaptive:drafter=int8,adaptive_length_threshold=6 "
                                                      "[tokens]"}, column="d_fixed", format="{:+.1f}")
for sfx, pol, texts in (("", "ucbspec [throughput]", ("+21.6", "+12.8", "+31.1")),
                        ("", "exp3spec [throughput]", ("+23.4",)),
                        ("", "oracle [time]", ("−7.1", "−10.1", "−4.4")),
                        ("", "[per-round switcher] [time]", ("−67.1",)),
                        ("_eagle", "ucbspec [throughput]", ("+182.6",)),
                        ("_eagle", "exp3spec [throughput]", ("+205.4",)),
                        ("_eagle", "oracle [time]", ("−23.6", "−37.7", "−12.1"))):
    for t, col in zip(texts, ("d_fixed", "d_fixed_lo", "d_fixed_hi"), strict=False):
        q(t, file=f"{D}engine_rules{sfx}_single.csv", where={"method": pol}, column=col, format="{:+.1f}")
SE = "engine_rules_eagle_single.csv"
er("129.1", "_eagle", "single", None, BEST, "tps", "{:.1f}")
q("1.000", file=D + SE, where={"method": "vllm-adaptive-k:drafter=eagle [tokens]", "role": DEFAULT},
  column="speedup", format="{:.3f}")
q("+6.4", file=D + SE, where={"method": "sglang-adaptive:drafter=eagle,ema_alpha=0.1 [tokens]", "role": TUNED},
  column="d_fixed", format="{:+.1f}")
for t, col in zip(("−6.2", "−12.1", "−1.0"), ("d_default", "d_default_lo", "d_default_hi"), strict=True):
    q(t, file=D + SE, where={"method": "sglang-adaptive:drafter=eagle,ema_alpha=0.1 [tokens]", "role": TUNED},
      column=col, format="{:+.1f}")
q("0.621", file=D + SE, where={"method": "trtllm-schedule:drafter=eagle"}, column="speedup", format="{:.3f}")
q("0.768", file=D + SE, where={"method": "vllm-batch-table:drafter=eagle"}, column="speedup", format="{:.3f}")
q("+151.6", file=D + SE, where={"role": TUNED, "method": "vllm-batch-table:num_speculative_tokens_per_batch_size="
                                                        "1-8:3/9-512:1,drafter=eagle"}, column="d_fixed",
  format="{:+.1f}")
V, VE = "engine_rules_serving.csv", "engine_rules_eagle_serving.csv"
for f, method, role, col, t in (
        (V, None, BEST, "mean", "2.163"), (V, "vllm-batch-table:drafter=int8", DEFAULT, "mean", "2.096"),
        (V, "trtllm-schedule:drafter=int8", DEFAULT, "mean", "2.086"),
        (V, "vllm-adaptive-k:c_draft=0.02,drafter=int8", TUNED, "mean", "2.078"),
        (V, "vllm-adaptive-k:drafter=int8", DEFAULT, "bs1", "1.989"),
        (V, "vllm-adaptive-k:drafter=int8", DEFAULT, "bs32", "1.291"),
        (V, "vllm-adaptive-k:drafter=int8", DEFAULT, "mean", "1.870"),
        (V, "ucbspec", "learner", "mean", "2.007"), (V, "exp3spec", "learner", "mean", "1.972"),
        (V, "llamacpp-adaptive:drafter=int8", DEFAULT, "mean", "1.610"),
        (V, "llamacpp-adaptive:drafter=int8,adaptive_length_threshold=1", TUNED, "mean", "1.767"),
        (VE, "llamacpp-adaptive:drafter=eagle", DEFAULT, "mean", "1.002"),
        (VE, None, BEST, "mean", "1.002"),
        (VE, "vllm-adaptive-k:c_draft=0.4,drafter=eagle", TUNED, "mean", "0.968"),
        (VE, "trtllm-schedule:drafter=eagle", DEFAULT, "mean", "0.604"),
        (VE, "trtllm-schedule:max_concurrency=1,drafter=eagle", TUNED, "mean", "0.854"),
        (VE, "vllm-batch-table:drafter=eagle", DEFAULT, "mean", "0.749"),
        (VE, "vllm-batch-table:num_speculative_tokens_per_batch_size=1-8:3/9-512:1,drafter=eagle", TUNED, "mean",
         "0.889"),
        (VE, "ucbspec", "learner", "mean", "0.786")):
    q(t, file=D + f, where={"role": role} if method is None else {"method": method, "role": role}, column=col,
      format="{:.3f}")
for t, col in zip(("+0.207", "+0.184", "+0.230"), ("d_default", "d_default_lo", "d_default_hi"), strict=True):
    q(t, file=D + V, where={"method": "vllm-adaptive-k:c_draft=0.02,drafter=int8", "role": TUNED}, column=col,
      format="{:+.3f}")

if __name__ == "__main__":
    text = json.dumps({"sections": SECTIONS, "quotes": Q}, indent=1, ensure_ascii=False) + "\n"
    (Path(__file__).resolve().parents[2] / D / "quoted.json").write_text(text)
