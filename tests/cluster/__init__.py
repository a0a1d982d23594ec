"""The cluster fault test: Worldbase as processes on loopback (nginx, two `worldbase serve`,
two `worldbase worker`, PostGIS, Redis, moto's S3) under a mixed load, with faults injected
one at a time. Run with `make cluster-test` (`python -m tests.cluster`); never collected by
pytest (no test_ files here)."""
