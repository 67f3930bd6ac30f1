"""Chain access: transaction sending, contract bindings, deployment and devnet control."""
