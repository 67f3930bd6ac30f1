"""The protocol core every other part shares: contract artifacts, job specs and their canonical
hash, events, statuses, errors and value types. It imports nothing else of ComputeMarket."""
