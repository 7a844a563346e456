"""Benchmarks behind `hub bench …`. Each module here that defines `command` (a click
command) becomes `hub bench <name>`. Every benchmark measures a baseline in the same
run and prints its figures as a table with ratios beside times."""
