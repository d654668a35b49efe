"""Write a prompt set's turns as a REST datastore text file (one whitespace-normalised turn per
line): ``python -m gpu_collect.prompt_sets.corpus builtin:specregret-84 OUT.txt``."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from gpu_collect import prompts as P

    src, out = (sys.argv[1:] if argv is None else argv)[:2]
    qs, _ = P.load_questions(src)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(" ".join(t.split()) + "\n" for q in qs for t in q.turns), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
