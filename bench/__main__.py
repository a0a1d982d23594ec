"""`python -m bench`: run every benchmark in turn."""

from bench import core_overhead

core_overhead.run()
