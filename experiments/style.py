"""One colour and marker per policy and per drafter, the same in every figure.

Policies: a fixed table keyed by the family name (the part before ``:``), covering every
registered policy (``simulator.policies.REGISTRY``); the families of the paper figures get the
colour-blind palette's clearly different hues, the rest distinct darker hues, and every family
its own marker.  A parameterised variant (``ucbspec:reward=tokens``) keeps its family's colour
and marker and is drawn dashed with a hollow marker.  A name outside the table (a plug-in) gets
a colour and marker from a stable hash of its name.

Drafters: :class:`DrafterPalette` gives the ``i``-th drafter of the trace's drafter list the
``i``-th of 20 distinct colours (tab20, dark shades first), a marker and, past 20 drafters, a
dashed line; build it once from the trace's full drafter list so that a drafter has the same
colour in every figure of a run, whichever subset a figure shows.  An arm ``d@k`` takes its
drafter's colour; ``plain@0`` (no drafting) is always grey.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import matplotlib.colors as mcolors
import seaborn as sns

RGB = tuple[float, float, float]

_CB = [tuple(c) for c in sns.color_palette("colorblind", 10)]
_DARK = [tuple(c) for c in sns.color_palette("dark", 10)]
_MUTED = [tuple(c) for c in sns.color_palette("muted", 10)]

# family -> (colour, marker); colours pairwise distinct, markers pairwise distinct
POLICY_STYLES: dict[str, tuple[RGB, str]] = {
    "ucbspec": (_CB[0], "o"), "exp3spec": (_CB[1], "s"), "hedgespec": (_CB[2], "D"),
    "ucb1": (_CB[3], "p"), "banditspec-code": (_CB[4], "P"), "uniform": (_CB[5], "v"),
    "smartspec": (_CB[6], "X"), "fixed": (_CB[7], "x"), "oracle": ((0.0, 0.0, 0.0), "*"),
    "structured-ucb": (_CB[9], "^"), "heuristic": (_CB[8], "<"), "heuristic_transient": (_DARK[8], ">"),
    "klucb": (_DARK[0], "h"), "thompson": (_DARK[3], "d"), "epsilon-greedy": (_DARK[4], "8"),
    "exp3-ix": (_DARK[1], "H"), "tsallis-inf": (_DARK[2], "1"), "sw-ucb": (_DARK[9], "2"),
    # the engines' rules (issue 31): hues of the "muted" palette, outside the hashed plug-in colours
    "vllm-adaptive-k": (_MUTED[3], "+"), "vllm-batch-table": (_MUTED[4], "|"), "trtllm-schedule": (_MUTED[8], "_"),
    "sglang-adaptive": (_MUTED[6], "3"), "llamacpp-adaptive": (_MUTED[9], "4"),
}
_SPARE_MARKERS = ("3", "4", "+", "|", "_", ".")
PLAIN_COLOR: RGB = (0.5, 0.5, 0.5)

_TAB20 = [tuple(c) for c in sns.color_palette("tab20", 20)]
DRAFTER_COLORS: list[RGB] = _TAB20[0::2] + _TAB20[1::2]  # 10 dark shades, then their light pairs
DRAFTER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


@dataclass(frozen=True)
class Style:
    """How one series is drawn: ``kw()`` gives matplotlib ``plot`` keyword arguments."""

    color: RGB
    marker: str
    linestyle: object = "-"
    hollow: bool = False

    def kw(self, marker: bool = True) -> dict:
        d: dict = dict(color=self.color, linestyle=self.linestyle)
        if marker:
            d["marker"] = self.marker
            if self.hollow:
                d["markerfacecolor"] = "white"
        return d


def family(policy: str) -> str:
    """A policy spec's family: ``ucbspec:reward=tokens`` -> ``ucbspec``."""
    return policy.split(":")[0]


def policy_style(policy: str) -> Style:
    """The one style of ``policy`` (any spec string); see the module docstring."""
    fam = family(policy)
    if fam in POLICY_STYLES:
        color, marker = POLICY_STYLES[fam]
    else:  # a plug-in: a stable (not salted) hash of its name
        h = zlib.crc32(fam.encode())
        color = _DARK[5 + h % 3] if h % 2 else _TAB20[(h // 2) % 20]
        marker = _SPARE_MARKERS[h % len(_SPARE_MARKERS)]
    variant = ":" in policy
    return Style(tuple(color), marker, (0, (4, 2)) if variant else "-", hollow=variant)


def policy_color(policy: str) -> RGB:
    return policy_style(policy).color


def policy_marker(policy: str) -> str:
    return policy_style(policy).marker


class DrafterPalette:
    """Drafter and arm styles of one run, fixed by the trace's drafter list.

    Parameters
    ----------
    drafters
        Every drafter of the trace, in the trace's order.  A name asked for that is not in the
        list is appended (so it still gets a colour of its own, after the listed ones).
    """

    def __init__(self, drafters: list[str] | tuple[str, ...] = ()):
        self.drafters: list[str] = list(dict.fromkeys(drafters))

    def _index(self, drafter: str) -> int:
        if drafter not in self.drafters:
            self.drafters.append(drafter)
        return self.drafters.index(drafter)

    def drafter(self, drafter: str) -> Style:
        """The style of ``drafter`` (a distinct colour/marker/linestyle triple per index)."""
        i = self._index(drafter)
        n = len(DRAFTER_COLORS)
        return Style(DRAFTER_COLORS[i % n], DRAFTER_MARKERS[(i + i // 10) % len(DRAFTER_MARKERS)],
                     "-" if i < n else ((0, (4, 2)) if i < 2 * n else (0, (1, 1))))

    def arm(self, arm: str) -> Style:
        """The style of arm ``drafter@k`` (its drafter's); ``plain`` / ``*@0`` is grey, dotted."""
        name, _, k = arm.partition("@")
        if name == "plain" or k == "0":
            return Style(PLAIN_COLOR, ".", ":")
        return self.drafter(name)

    def arm_shade(self, arm: str, k: int, k_ref: int) -> RGB:
        """``drafter@k`` among draft lengths ``1..k_ref``: the drafter's colour at ``k_ref``,
        lighter for shorter drafts (an ordinal shade of the one drafter colour)."""
        base = self.arm(arm).color
        t = 0.5 * (k_ref - k) / max(k_ref - 1, 1)
        return tuple(float(c + (1 - c) * t) for c in mcolors.to_rgb(base))

    def arm_colors(self, arms: list[str]) -> dict[str, RGB]:
        """Colours of the arms shown together: each arm its drafter's colour; a drafter shown at
        several draft lengths gets lighter shades for the shorter ones (its longest keeps the
        drafter's own colour)."""
        k_of = {a: int(a.partition("@")[2]) if a.partition("@")[2].isdigit() else 0 for a in arms}
        top: dict[str, int] = {}
        for a in arms:
            d = a.partition("@")[0]
            top[d] = max(top.get(d, 0), k_of[a])
        return {a: (self.arm_shade(a, k_of[a], top[a.partition("@")[0]]) if k_of[a] > 0 and
                    a.partition("@")[2].isdigit() else self.arm(a).color) for a in arms}
