"""gpu_collect: run a real target and drafters, write traces through ``traces``.

Heavy imports (torch, transformers) happen inside the submodules, never here.
Entry point: ``python gpu_collect/collect_traces.py`` (or ``python -m gpu_collect``).
"""
