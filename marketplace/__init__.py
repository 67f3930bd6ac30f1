"""ComputeMarket marketplace: the protocol core, chain access, indexer, API and requester client."""

__version__ = "0.1.0"
