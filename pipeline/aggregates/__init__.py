"""Cross-account aggregation: the Aggregate record as Arrow, its lake layout, and the reader's
merge of base records and corrections into exact per-window rollups."""
