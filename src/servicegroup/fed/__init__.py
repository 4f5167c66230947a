"""Multi-cluster distribution of grids to member clusters (see docs/fed.md)."""
