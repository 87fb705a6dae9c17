"""Forwarders for SIEMs without a Kafka input: syslog (RFC 5424, JSON or CEF) and Splunk HEC.
Each reads a JSON topic (the mirror or a SIEM view) in its own group and commits only what the
destination acknowledged."""
