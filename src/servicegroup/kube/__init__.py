"""Generic Kubernetes machinery (client, informers, work queues, controllers); kind-agnostic."""
