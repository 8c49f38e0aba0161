"""rlsuite: a reinforcement-learning algorithm suite in JAX."""

__version__ = "0.1.0"
