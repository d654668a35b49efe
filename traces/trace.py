"""The in-memory ``Trace``: one object per trace directory, dense arrays for replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .arms import PLAIN, Arm, ArmError


class TraceError(ValueError):
    """A trace that cannot be read or does not satisfy the schema (one problem per line)."""


@dataclass(frozen=True)
class Trace:
    """A validated trace.

    Attributes
    ----------
    manifest : dict
        Provenance and settings (``traces.schema.MANIFEST_REQUIRED``).
    prompts : pandas.DataFrame
        One row per prompt, in trace order (``traces.schema.PROMPT_COLUMNS``).
    accept : numpy.ndarray, shape (n_prompts, n_drafters, max_output_len), int16
        ``L_d(t)`` per prompt, drafter and position; ``-1`` past the prompt's output.
    alpha, beta : numpy.ndarray or None, same shape, float32
        Sampling-mode acceptance probabilities (NaN past the output), ``None`` for greedy.
    costs : pandas.DataFrame or None
        Measured costs (``traces.schema.COST_COLUMNS``).
    ranks : numpy.ndarray or None, shape (n_prompts, n_drafters, max_output_len, depth), int16
        Target-token ranks (``traces.schema.RANKS_COLUMNS``); ``-1`` where not recorded
        (drafters without ranks, positions past the output).
    path : Path or None
        Directory the trace was read from.
    drafted : numpy.ndarray or None, same shape as ``accept``, int16
        Partial traces of adaptive-length logs: the draft length each logged step ran at
        (``-1`` where no step, or where the drafter ran at its constant K); a step with
        ``accept == drafted`` is right-censored (``traces.censored``).
    """

    manifest: dict[str, Any]
    prompts: pd.DataFrame
    accept: np.ndarray
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    costs: pd.DataFrame | None = None
    path: Path | None = field(default=None, compare=False)
    ranks: np.ndarray | None = field(default=None, compare=False)
    drafted: np.ndarray | None = field(default=None, compare=False)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    # -- shape helpers -------------------------------------------------------------------
    @property
    def drafter_names(self) -> tuple[str, ...]:
        return tuple(d["name"] for d in self.manifest["drafters"])

    @property
    def k_max(self) -> int:
        return int(self.manifest["k_max"])

    @property
    def partial(self) -> bool:
        """An on-policy engine log (manifest ``information`` "partial"): ``accept`` is -1 where
        no logged step started (``traces.schema.INFORMATION``)."""
        return self.manifest.get("information", "full") == "partial"

    @property
    def k_limits(self) -> dict[str, int]:
        """The largest K (and tree depth) of each drafter: ``k_max``, or less where the drafter
        says so (``max_depth``: a Medusa checkpoint drafts at most one token per head)."""
        return {d["name"]: min(self.k_max, int(d.get("max_depth", self.k_max))) for d in self.manifest["drafters"]}

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def output_lens(self) -> np.ndarray:
        return self.prompts["output_len"].to_numpy(dtype=np.int64)

    @property
    def prompt_ids(self) -> list[str]:
        return self.prompts["prompt_id"].astype(str).tolist()

    @property
    def categories(self) -> list[str]:
        return self.prompts["category"].astype(str).tolist()

    @property
    def is_synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    @property
    def label(self) -> str:
        """Name for tables and figures; synthetic traces always say so."""
        name = self.manifest.get("name") or (self.path.name if self.path else "trace")
        return f"{name} (SYNTHETIC)" if self.is_synthetic else str(name)

    def drafter_index(self, name: str) -> int:
        return self.drafter_names.index(name)

    @property
    def rank_cap(self) -> int:
        return int(self.manifest.get("rank_cap", 16))

    def has_ranks(self, drafter: str) -> bool:
        """Whether tree arms of ``drafter`` can be replayed exactly from this trace."""
        d = self.drafter_index(drafter)
        return self.ranks is not None and bool((self.ranks[:, d, :, 0] >= 0).any())

    def single_candidate(self, drafter: str) -> bool:
        """A drafter that proposes one token per depth (n-gram lookups): every tree accepts what
        its all-rank-0 path accepts, the chain of that path's depth."""
        info = self.manifest["drafters"][self.drafter_index(drafter)]
        return info.get("kind") in ("ngram",) or info.get("stochastic") is False

    def tree_ranks(self, drafter: str, prompt: int, depth: int) -> np.ndarray:
        """``(output_len, depth)``: at each position ``t``, the ranks of the target's tokens along
        a tree of ``depth`` drafted at ``t`` (``-1``: none, e.g. past the output)."""
        d = self.drafter_index(drafter)
        n = int(self.output_lens[prompt])
        r = self.ranks[prompt, d]  # (T, rank depth)
        if r.shape[1] >= depth and int(self.manifest["drafters"][d].get("rank_depth", 1)) > 1:
            return r[:n, :depth].astype(np.int64)
        pad = np.concatenate([r[:n, 0], np.full(depth, -1)]).astype(np.int64)  # token input: t + j - 1
        return np.stack([pad[j : j + n] for j in range(depth)], axis=1)

    # -- censored steps (adaptive-length logs) -------------------------------------------------
    def censored(self, drafter: str) -> bool:
        """Whether ``drafter``'s logged steps ran at varying draft lengths (``drafted`` recorded):
        its law above a step's own length comes from :meth:`survival`, not from the steps."""
        if self.drafted is None:
            return False
        return bool((self.drafted[:, self.drafter_index(drafter)] >= 0).any())

    def logged_steps(self, drafter: str, prompt: int) -> tuple[np.ndarray, np.ndarray]:
        """``(a, k)`` of the logged steps of ``drafter`` on ``prompt`` (``k``: each step's draft
        length; the drafter's K where it ran at a constant one)."""
        d = self.drafter_index(drafter)
        n = int(self.output_lens[prompt])
        row = self.accept[prompt, d, :n].astype(np.int64)
        at = row >= 0
        k = (self.drafted[prompt, d, :n][at].astype(np.int64) if self.censored(drafter)
             else np.full(int(at.sum()), self.k_limits[drafter], np.int64))
        return row[at], k

    def survival(self, drafter: str) -> np.ndarray:
        """``(n_prompts, k_limit + 1)``: Kaplan-Meier ``P(L >= i)`` per prompt from the logged
        ``(a, k)`` steps (``traces.censored.prompt_survival``), computed once."""
        from .censored import prompt_survival

        key = ("survival", drafter)
        if key not in self._memo:
            steps = [self.logged_steps(drafter, p) for p in range(self.n_prompts)]
            self._memo[key] = prompt_survival(steps, self.k_limits[drafter])
        return self._memo[key]

    # -- the arms a log gives (several-file Spec-Bench imports) ---------------------------------
    def _structure(self, drafter: str) -> str | None:
        return self.manifest["drafters"][self.drafter_index(drafter)].get("structure")

    def logged_arms(self) -> list[Arm] | None:
        """``plain@0`` then each logged method at its logged configuration (its drafter entry's
        ``logged_arms``: a tree or a constant-K chain at K, a chain at varying k at every
        identified k), or None where the drafters do not say (other traces)."""
        spec = self.logged_arm_spec()
        if spec is None:
            return None
        from .arms import resolve_arms

        return resolve_arms(spec, self.drafter_names, self.k_limits)

    def logged_arm_spec(self) -> str | None:
        """:meth:`logged_arms` as an ``--arms`` selection (``plain@0,eagle@5,sps@1-13``)."""
        if not self.partial or not all("logged_arms" in d for d in self.manifest["drafters"]):
            return None
        return ",".join(["plain@0"] + [str(d["logged_arms"]) for d in self.manifest["drafters"]])

    def check_logged_arm(self, arm: Arm) -> None:
        """Refuse an arm a tree method's log does not give (only its logged tree, ``d@K``)."""
        if not self.partial or arm.drafter == PLAIN or arm.k == 0 or self._structure(arm.drafter) != "tree":
            return
        K = self.k_limits[arm.drafter]
        if arm.is_tree or arm.k != K:
            raise ArmError(f"arm {arm.name}: {arm.drafter} is a tree method, so its log gives only its logged tree, "
                           f"arm {arm.drafter}@{K} (a tree cut to depth {arm.k} is a configuration the log never "
                           f"ran, with no measured cost); expected {arm.drafter}@{K}")

    def select_arms(self, spec: str | None) -> tuple[list[Arm], str | None]:
        """The arms of ``spec`` (``traces.resolve_arms``), each checked by
        :meth:`check_logged_arm`; with no ``spec`` (or ``all``) on a trace whose methods say
        their logged configurations, those (:meth:`logged_arms`) and a line saying so."""
        from .arms import resolve_arms

        logged = self.logged_arms()
        if logged is not None and (spec is None or spec.strip() == "all"):
            return logged, (f"arms: the methods at their logged configurations ({self.logged_arm_spec()}); a tree "
                            "method gives only its logged tree, a chain logged at one K also every k < K (no "
                            "measured cost); --arms to choose")
        arms = resolve_arms(spec, self.drafter_names, self.k_limits)
        for a in arms:
            self.check_logged_arm(a)
        return arms, None

    # -- arm outcomes ----------------------------------------------------------------------
    def accepted(self, arm: Arm, prompt: int) -> np.ndarray:
        """Draft tokens accepted, ``min(K, L_d(t))``, at every position of one prompt."""
        n = int(self.output_lens[prompt])
        if arm.drafter == PLAIN or arm.k == 0:
            return np.zeros(n, dtype=np.int64)
        a = self.accept[prompt, self.drafter_index(arm.drafter), :n].astype(np.int64)
        if self.partial:  # the logged steps only (a tree needs ranks, which logs do not hold)
            self.check_logged_arm(arm)
            if arm.is_tree:
                raise ArmError(f"arm {arm.name}: {self.label} is an engine log (partial information) without "
                               "ranks; only chain arms d@k with k <= the logged K replay on it")
            if self.censored(arm.drafter):
                a, k = self.logged_steps(arm.drafter, prompt)
                if (k < arm.k).any():  # min(a, K) unknown at a censored step that drafted fewer
                    raise ArmError(f"arm {arm.name}: drafter {arm.drafter!r} was logged at varying draft "
                                   f"lengths (as low as {int(k.min())}), so min(K, L) is censored at its steps; "
                                   "its law is the Kaplan-Meier estimate (--setting stochastic --law empirical)")
                return np.minimum(a, arm.k)
            return np.minimum(a[a >= 0], arm.k)
        if not arm.is_tree:
            return np.minimum(a, arm.k)
        from .trees import load_tree

        tree = load_tree(arm.tree)
        if self.has_ranks(arm.drafter):
            if tree.max_rank >= self.rank_cap:  # a capped rank means "rank_cap or worse", not that rank
                raise ArmError(f"arm {arm.name}: the tree uses rank {tree.max_rank}, but this trace caps ranks at "
                               f"{self.rank_cap}; use trees whose ranks are below {self.rank_cap}")
            return np.minimum(tree.accept(self.tree_ranks(arm.drafter, prompt, tree.depth)), n - np.arange(n))
        if self.single_candidate(arm.drafter):
            zeros = tree.accept(np.zeros((1, tree.depth), dtype=np.int64))[0]  # depth of the all-0 path
            return np.minimum(a, zeros)
        raise ArmError(f"arm {arm.name}: this trace records no ranks for drafter {arm.drafter!r} (schema "
                       f"{self.manifest.get('schema_version')}); tree arms of a model drafter need them: "
                       f"recollect with this version")

    def emitted(self, arm: Arm, prompt: int) -> np.ndarray:
        """Tokens one round of ``arm`` emits at each position, capped at what remains."""
        n = int(self.output_lens[prompt])
        return np.minimum(self.accepted(arm, prompt) + 1, n - np.arange(n))

    def fixed_arm_rounds(self, arm: Arm, prompt: int) -> np.ndarray:
        """Emitted counts of the rounds played when ``arm`` is used throughout (greedy replay)."""
        e = self.emitted(arm, prompt)
        out, t = [], 0
        while t < len(e):
            out.append(int(e[t]))
            t += int(e[t])
        return np.asarray(out, dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        """Counts for ``python -m traces info``."""
        lens = self.output_lens
        mean_acc = {}
        for d_i, d in enumerate(self.drafter_names):
            vals = np.concatenate([self.accept[p, d_i, : lens[p]] for p in range(self.n_prompts)])
            vals = vals[vals >= 0]  # a partial trace's unobserved positions are -1
            mean_acc[d] = float(vals.mean()) if len(vals) else float("nan")
        return {
            "label": self.label,
            "kind": self.manifest["kind"],
            "prompts": self.n_prompts,
            "categories": dict(pd.Series(self.categories).value_counts().sort_index()),
            "drafters": list(self.drafter_names),
            "k_max": self.k_max,
            "output_tokens": int(lens.sum()),
            "mean_output_len": float(lens.mean()) if len(lens) else 0.0,
            "mean_accept": mean_acc,
            "has_costs": self.costs is not None,
            "information": self.manifest.get("information", "full"),
        }
