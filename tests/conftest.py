"""Shared test set-up: JAX's persistent compilation cache, so programs compiled by one test
(or by a previous run on this machine) are not compiled again."""

import os

from rlsuite.train import enable_compilation_cache

enable_compilation_cache(os.environ.get("RLSUITE_TEST_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "rlsuite", "jax-tests")))
