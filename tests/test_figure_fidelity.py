"""Figures that cannot be misread: one style per policy and drafter across figures, bands with
prompts as clusters, survivor-corrected pull shares, the hindsight best including plain
decoding, synthetic panels labelled, every figure naming its trace and cost table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

import traces
from experiments import figures as F
from experiments.cli import main as exp_main
from experiments.paper import prompt_cluster_band, render_figures, trajectories
from experiments.style import DrafterPalette, policy_style
from simulator.envs.adversarial import SYNTHETIC_STREAMS
from simulator.policies import REGISTRY
from simulator.runner import RunConfig, resolve
from traces import synthetic

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reproducing.md"


def _rgb(c) -> tuple:
    return tuple(round(x, 6) for x in mcolors.to_rgb(c))


def _lines(fig) -> dict[str, tuple]:
    """label -> colour of every labelled line of ``fig``."""
    return {ln.get_label(): _rgb(ln.get_color()) for ax in fig.axes for ln in ax.get_lines()
            if not ln.get_label().startswith("_")}


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    parts += [ax.get_title() for ax in fig.axes]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The quick figures pipeline on a small synthetic trace; the rendered figures by name."""
    tr = synthetic.tgd([0.8, 0.5, 0.3], n_prompts=8, output_len=60, k_max=4, seed=5)
    d = traces.write(tr, tmp_path_factory.mktemp("fid") / "small")
    out = tmp_path_factory.mktemp("fidout") / "figs"
    assert exp_main(["figures", "--trace", str(d), "--out", str(out), "--quick", "--quiet"]) == 0
    data = out / "data"
    meta = json.loads((data / "config.json").read_text())
    figs: dict = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(F, "save_figure", lambda fig, o, name, dpi=150: figs.setdefault(name, fig) and [])
    try:
        render_figures(data, out, meta)
    finally:
        mp.undo()
    return figs, meta, data, d


def test_policy_styles_distinct_for_every_registered_policy():
    names = sorted(REGISTRY)
    styles = [policy_style(n) for n in names]
    assert len({_rgb(s.color) for s in styles}) == len(names), "two policies share a colour"
    assert len({s.marker for s in styles}) == len(names), "two policies share a marker"
    assert _rgb(policy_style("ucbspec").color) != _rgb(policy_style("ucb1").color)
    v = policy_style("ucbspec:reward=tokens")  # a variant: its family's colour, drawn differently
    assert _rgb(v.color) == _rgb(policy_style("ucbspec").color) and v.linestyle != "-" and v.hollow


@pytest.mark.parametrize("n", [16, 20, 41])
def test_drafter_palette_distinct_and_fixed_by_the_trace_list(n):
    names = [f"drafter{i}" for i in range(n)]
    pal = DrafterPalette(names)
    styles = [pal.drafter(d) for d in names]
    assert len({(_rgb(s.color), s.marker, str(s.linestyle)) for s in styles}) == n
    assert len({_rgb(s.color) for s in styles}) == min(n, 20)  # 20 distinct colours, then line styles
    # asking in another order, or for a subset, does not move a drafter's colour
    other = DrafterPalette(names)
    assert [_rgb(other.drafter(d).color) for d in reversed(names)] == [_rgb(s.color) for s in reversed(styles)]
    assert _rgb(pal.arm(f"{names[3]}@4").color) == _rgb(styles[3].color)
    assert _rgb(pal.arm("plain@0").color) != _rgb(styles[0].color)


def test_colours_fixed_across_figures(rendered):
    figs, meta, _, _ = rendered
    surv = _lines(figs["fig7_acceptance_survival"])
    pulls = _lines(figs["fig6a_pulls_over_time"])
    for d in meta["drafters"]:
        assert pulls[f"{d}@4: pulls"] == surv[d], d  # the same drafter, the same colour
        assert pulls[f"{d}@4: best arm of the prompts still decoding"] == surv[d], d
    serve = _lines(figs["fig3_batch_serving"])
    assert serve[f"k = 4 ({meta['serve_drafter']}@4)"] == surv[meta["serve_drafter"]]
    for name in ("fig3_batch_serving", "fig5a_cumulative_regret", "fig5b_regret_vs_pool"):
        for label, col in _lines(figs[name]).items():
            if label in REGISTRY:
                assert col == _rgb(policy_style(label).color), (name, label)
    assert {"ucbspec", "ucb1"} <= set(serve) and serve["ucbspec"] != serve["ucb1"]


def test_every_figure_names_its_trace_and_cost_table(rendered):
    figs, meta, _, _ = rendered
    assert len(figs) == 9
    for name, fig in figs.items():
        text = _texts(fig)
        assert f"trace {meta['trace_label']}" in text, name
        assert "cost table" in text, name  # the table used, or "no cost table"
    assert "cost table cuda" not in _texts(figs["fig7_acceptance_survival"])  # no costs in survival
    assert re.search(r"cost table (?!\()", _texts(figs["fig3_batch_serving"]))  # serving names its table
    # ``python -m experiments plot`` titles a results folder's figures the same way
    assert F.source_of({"trace_label": "t", "cost_device": "cuda:H100 (8b)"}) == "trace t; cost table cuda:H100"
    assert F.source_of({"trace_label": "t"}) == "trace t; no cost table (rounds / tokens)"


def test_synthetic_panels_are_labelled(rendered):
    figs, meta, data, _ = rendered
    titles = [ax.get_title() for ax in figs["fig_regret_vs_length"].axes if ax.get_visible()]
    fitted = [t for t in titles if "fitted-" in t]
    assert len(fitted) == 1 and f"[fitted to {meta['trace_label']}]" in fitted[0]
    others = [t for t in titles if t not in fitted]
    assert others and all("[synthetic instance]" in t for t in others), others
    adversarial = [t for t in titles if t.startswith("adversarial")]
    assert len(adversarial) == 1 + len(SYNTHETIC_STREAMS)  # piecewise-oblivious + the named streams
    assert set(pd.read_csv(data / "bounds.csv")["source"]) == {f"fitted to {meta['trace_label']}",
                                                               "synthetic instance"}


def test_fig3_hindsight_best_includes_plain_decoding():
    """Drafting never pays here, so the best arm in hindsight is plain decoding (1.0) throughout."""
    rows = []
    for b in (1, 2, 3):
        for run in (0, 1):
            for m, k, imp in (("plain@0", 0, 1.0), ("d@1", 1, 0.9), ("d@2", 2, 0.8), ("ucbspec", -1, 0.85)):
                rows.append(dict(sample=b, batch_size=b, run=run, method=m, kind="policy" if k < 0 else "arm",
                                 k=max(k, 0), improvement=imp + 0.01 * run))
    fig = F.batch_serving(pd.DataFrame(rows))
    best = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("best arm per batch size")]
    assert len(best) == 1 and "k = 0 included" in best[0].get_label()
    assert np.allclose(best[0].get_ydata(), 1.005)


def test_fig5a_band_has_prompts_as_clusters(rendered):
    """A deterministic policy's identical replay runs add nothing: 4 runs per prompt give the
    same band as 1; and the band of duplicated lanes equals that of one lane per prompt."""
    _, _, _, d = rendered
    arms = "tgd0@4,tgd1@4,tgd2@4"
    one, four = (trajectories(RunConfig(trace=str(d), setting="replay", policies=("ucbspec",), runs=r, seed=0,
                                        arms=arms), ("ucbspec",)) for r in (1, 4))
    assert (four["active"] == 4 * one["active"]).all()  # the runs are copies
    for col in ("cum_regret", "lo", "hi"):
        assert np.allclose(one[col], four[col]), col
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12))
    m1, lo1, hi1 = prompt_cluster_band(x, np.arange(12))
    m20, lo20, hi20 = prompt_cluster_band(np.repeat(x, 20, axis=1), np.repeat(np.arange(12), 20))
    assert np.allclose(m1, m20) and np.allclose(lo1, lo20) and np.allclose(hi1, hi20)


def test_fig5a_and_6a_cut_where_few_prompts_decode(rendered):
    figs, _, data, _ = rendered
    traj = pd.read_csv(data / "trajectories.csv")
    for pol, g in traj.groupby("policy", sort=False):
        last = g.loc[g["prompts_active"] >= F.MIN_DECODING_SHARE * g["n_prompts"], "step"].max()
        assert last < g["step"].max()  # the cut removes a tail here
        for name in ("fig5a_cumulative_regret", "fig6a_pulls_over_time"):
            xs = [ln.get_xdata() for ax in figs[name].axes for ln in ax.get_lines()
                  if ln.get_label() == pol or (name.startswith("fig6a") and ax.get_title() == pol)]
            assert xs and max(float(np.max(x)) for x in xs) == last, (name, pol)
    assert "25%" in _texts(figs["fig6a_pulls_over_time"])
    assert "25%" in figs["fig5a_cumulative_regret"].axes[0].get_legend().get_title().get_text()


def test_fig6a_reference_is_the_surviving_prompts_best_arm(tmp_path):
    """Two short prompts where drafter a is right and two long ones where b is: as the short
    ones finish, the still-decoding prompts' best-arm share moves from 1/2 to all b, whatever
    the policy learns."""
    acc = []
    for n, good in ((20, 0), (20, 0), (80, 1), (80, 1)):
        a = np.zeros((2, n), np.int64)
        a[good] = np.minimum(4, n - 1 - np.arange(n))  # the good drafter accepts every token
        acc.append(a)
    d = traces.write(traces.from_arrays(acc, ["a", "b"], k_max=4, name="survivors"), tmp_path / "t")
    rc = RunConfig(trace=str(d), setting="replay", policies=("uniform",), runs=3, seed=0, arms="a@4,b@4")
    traj = trajectories(rc, ("uniform", "hedgespec"))
    best = traj[["best:a@4", "best:b@4"]].to_numpy()
    assert np.allclose(best[traj["active"] > 0].sum(axis=1), 1.0)
    assert np.allclose(best[traj["step"] == 1], [0.5, 0.5])  # every prompt still decoding
    want = np.bincount(resolve(rc).hindsight_best()["rounds"], minlength=2) / 4
    assert np.allclose(want, [0.5, 0.5])
    late = traj[traj["prompts_active"] == 2]  # the short prompts are done
    assert len(late) and np.allclose(late[["best:a@4", "best:b@4"]], [0.0, 1.0])
    assert np.allclose(late["prompts_active"] / late["n_prompts"], 0.5)


def test_fig6b_is_a_grid_and_fig7_legend_hides_nothing():
    pols = [f"ucbspec:p{i}" for i in range(8)]
    pulls = pd.DataFrame([dict(policy=p, category=c, a=1 + i, b=2, c=3) for p in pols
                          for i, c in enumerate(("chat", "code", "math"))])
    fig = F.category_heatmap(pulls)
    heat = [ax for ax in fig.axes if ax.get_visible() and ax.get_title() in pols]
    assert len(heat) == 8 and len({round(ax.get_position().x0, 3) for ax in heat}) == 4  # 2 rows x 4
    w, h = fig.get_size_inches()
    assert w / h < 4
    names = [f"d{i}" for i in range(16)]
    surv = pd.DataFrame([dict(drafter=n, i=i, survival=0.9 ** i * (1 - j / 20)) for j, n in enumerate(names)
                         for i in range(1, 9)])
    fig = F.survival_from_table(surv)
    ax = fig.axes[0]
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.x0 >= ax.get_window_extent().x1  # outside the axes: it covers no curve
    cols = _lines(fig)
    assert len(cols) == 16 and len(set(cols.values())) == 16


def test_reproducing_md_describes_the_three_adversarial_panels():
    text = DOCS.read_text()
    sec = text[text.index("## Regret against output length"):text.index("## Normalised regret")]
    for name in ("piecewise-oblivious", *SYNTHETIC_STREAMS):
        assert name in sec, name
    assert "Adversarial panels" in sec and "synthetic instance" in sec
