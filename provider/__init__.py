"""ComputeMarket provider: the daemon that claims jobs, runs them on Ray and settles them on-chain."""
