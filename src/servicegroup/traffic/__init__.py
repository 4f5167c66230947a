"""Per-node read-only topology proxy: kube-proxy and CoreDNS see only their NodeUnit's endpoints."""
