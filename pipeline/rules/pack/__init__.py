"""The default rule pack, on unless ``[alerter] default_pack = false``: native rules in
``native/`` (``<name>.py`` + ``<name>.yml``, imported by file path by
:mod:`pipeline.rules.native.load`) and Sigma correlations in ``sigma/``."""
