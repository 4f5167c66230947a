"""Our domain: API groups, label contract and CRD manifests. Pure data, stdlib only."""
