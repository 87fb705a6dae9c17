"""The deterministic demo generator: principals, API catalogue, records, attack scenarios."""
