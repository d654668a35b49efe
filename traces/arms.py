"""Arms: a drafter paired with a draft length, ``DRAFTER@K``, or with a static draft tree,
``DRAFTER@tree:NAME`` (``traces.trees``: ``4x2x2x1`` or a named file of rank paths).

``plain@0`` is plain (non-speculative) decoding; ``d@0`` for any drafter ``d`` names the
same arm and is canonicalised to ``plain@0``.  A tree arm's ``k`` is the tree's depth.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

PLAIN = "plain"


class ArmError(ValueError):
    """An arm name or arm selection that does not fit the trace."""


@dataclass(frozen=True, order=True)
class Arm:
    """One arm: drafter ``drafter`` proposing ``k`` tokens per round."""

    drafter: str
    k: int
    tree: str = ""  # a static draft tree (traces.trees); "" for a chain of k tokens

    def __post_init__(self) -> None:
        if self.tree:
            from .trees import TreeError, load_tree

            try:
                depth = load_tree(self.tree).depth
            except TreeError as exc:
                raise ArmError(f"arm {self.drafter}@tree:{self.tree}: {exc}") from None
            if self.drafter == PLAIN:
                raise ArmError("arm plain@tree:...: plain decoding drafts nothing")
            object.__setattr__(self, "k", depth)
            return
        if self.k < 0:
            raise ArmError(f"arm {self.drafter}@{self.k}: K must be >= 0")
        if self.k == 0 and self.drafter != PLAIN:
            object.__setattr__(self, "drafter", PLAIN)
        if self.drafter == PLAIN and self.k != 0:
            raise ArmError(f"arm plain@{self.k}: plain decoding only has K = 0")

    @property
    def name(self) -> str:
        return f"{self.drafter}@tree:{self.tree}" if self.tree else f"{self.drafter}@{self.k}"

    @property
    def is_tree(self) -> bool:
        return bool(self.tree)

    def __str__(self) -> str:
        return self.name


def arm_from_name(name: str) -> Arm:
    """``DRAFTER@K`` -> ``Arm`` with no trace to check it against (the one arm-name parser)."""
    d, at, k = name.rpartition("@")
    if not at or not d:
        raise ArmError(f"arm {name!r}: expected DRAFTER@K, e.g. pld@2 or plain@0")
    if k.startswith("tree:"):
        return Arm(d, 0, tree=k[len("tree:"):])
    try:
        kk = int(k)
    except ValueError:
        raise ArmError(f"arm {name!r}: K must be an integer, got {k!r}") from None
    return Arm(d, kk)


Limits = int | Mapping[str, int]  # the trace's k_max, or per drafter (``Trace.k_limits``)


def _limit(k_max: Limits, d: str) -> tuple[int, str]:
    if isinstance(k_max, int):
        return k_max, "the trace's k_max"
    lim = int(k_max.get(d, max(k_max.values(), default=0)))
    why = "the trace's k_max" if lim == max(k_max.values(), default=0) else f"drafter {d} drafts at most {lim} tokens"
    return lim, why


def parse_arm(name: str, drafters: tuple[str, ...] | list[str], k_max: Limits) -> Arm:
    """Parse ``DRAFTER@K`` and check it against the trace's drafters and ``k_max`` (or each
    drafter's own limit: Medusa heads draft at most as many tokens as they have heads)."""
    arm = arm_from_name(name)
    d, kk = arm.drafter, arm.k
    if d != PLAIN and d not in drafters:
        raise ArmError(f"arm {name!r}: unknown drafter {d!r}; expected one of {sorted(drafters)}")
    lim, why = _limit(k_max, d)
    if not 0 <= kk <= lim:
        what = f"tree depth {kk}" if arm.is_tree else "K"
        raise ArmError(f"arm {name!r}: {what} must be in 0..{lim} ({why})")
    return arm


def all_arms(drafters: tuple[str, ...] | list[str], k_max: Limits) -> list[Arm]:
    """``plain@0`` then every ``d@K`` for K = 1..k_max (each drafter's own limit), in trace order."""
    return [Arm(PLAIN, 0)] + [Arm(d, k) for d in drafters for k in range(1, _limit(k_max, d)[0] + 1)]


def resolve_arms(spec: str | None, drafters: tuple[str, ...] | list[str], k_max: Limits) -> list[Arm]:
    """Resolve an arm selection into a de-duplicated, ordered list of arms.

    ``spec`` is ``None``/``"all"`` or a comma-separated list of items, each an arm name,
    a glob over drafter names with a K or a K range (``"ngram*@1-4"``, ``"*@2"``).  A glob
    leaves out the K above a matched drafter's own limit; a named drafter past it is an error.
    """
    if spec is None or spec.strip() == "all":  # "" selects no arm, like ","
        return all_arms(drafters, k_max)
    out: list[Arm] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if "@" not in item:
            raise ArmError(f"arm selection {item!r}: expected DRAFTER@K or GLOB@K1-K2")
        pat, _, ks = item.rpartition("@")
        if ks.startswith("tree:"):
            names = [PLAIN, *drafters] if any(c in pat for c in "*?[") else [pat]
            matched = [d for d in names if fnmatch.fnmatchcase(d, pat) and d != PLAIN]
            if not matched:
                raise ArmError(f"arm selection {item!r}: no drafter matches {pat!r}; drafters: {list(drafters)}")
            for d in matched:
                arm = parse_arm(f"{d}@{ks}", drafters, k_max)
                if arm not in out:
                    out.append(arm)
            continue
        if "-" in ks:
            lo_s, _, hi_s = ks.partition("-")
            try:
                k_range = range(int(lo_s), int(hi_s) + 1)
            except ValueError:
                raise ArmError(f"arm selection {item!r}: bad K range {ks!r}") from None
        else:
            try:
                k_range = range(int(ks), int(ks) + 1)
            except ValueError:
                raise ArmError(f"arm selection {item!r}: K must be an integer") from None
        names = [PLAIN, *drafters] if any(c in pat for c in "*?[") else [pat]
        matched = [d for d in names if fnmatch.fnmatchcase(d, pat)]
        if not matched:
            raise ArmError(
                f"arm selection {item!r}: no drafter matches {pat!r}; drafters: {list(drafters)}"
            )
        glob = any(c in pat for c in "*?[")
        for d in matched:
            for k in k_range:
                if (d == PLAIN and k != 0) or (glob and d != PLAIN and k > _limit(k_max, d)[0]):
                    continue
                arm = parse_arm(f"{d}@{k}", drafters, k_max)
                if arm not in out:
                    out.append(arm)
    if not out:
        raise ArmError(f"arm selection {spec!r} selects no arm")
    return out
