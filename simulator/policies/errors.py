"""The policy layer's error type (its own module, so every policy module can import it)."""


class PolicyError(ValueError):
    """Unknown policy name, invalid hyperparameter, or a policy module that cannot be loaded."""
