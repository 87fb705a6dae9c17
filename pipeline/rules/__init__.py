"""Detection rules: Sigma (and Sigma v2.1 correlations) and native Python rules, the default
pack, and the engines the alerter and ``trailpipe rules`` share. Pure logic, no I/O beyond
reading rule files."""
