"""The default pack's native rules. The loader imports each rule by file path; this file
only makes the directory a package so type checkers see each rule under its own name."""
