"""Alert fan-out: routes and destinations for the notifier daemon (pure logic and clients)."""
