"""Micro-benchmarks behind the numbers the notebooks and issues quote (run by ``make bench`` via
``scripts/bench.py``); kept out of the study packages so the paper code stays about the paper."""
