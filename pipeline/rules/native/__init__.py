"""Native (detection-as-code) rules: a Python module with ``detect(event) -> bool`` plus a
metadata file, with its tests beside it."""
