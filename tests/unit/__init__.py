"""Library tests, in process: suites, gates, scorers, statistics, the contract, local tiny models."""
