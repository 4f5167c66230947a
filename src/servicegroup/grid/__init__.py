"""DeploymentGrid / StatefulSetGrid / ServiceGrid: one child per unit, computed by pure functions."""
