"""Paper artefacts composed from the lower layers: Table 1, every figure, the theory
validation, arms scaling and the Spec-Bench export (``python -m experiments``).

Layers point one way: ``traces`` <- ``theory`` <- ``simulator`` <- ``experiments``; nothing
below imports this package (``tests/test_import_boundaries.py``).
"""
