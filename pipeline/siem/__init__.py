"""SIEM subscriptions: per-SIEM principals (SCRAM or mTLS), exactly three ACL bindings each,
optional filtered/redacted views, and client configs for the tools SIEMs run."""
