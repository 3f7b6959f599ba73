"""The Kubernetes backend: endpoint versions as Deployments and Services in an attached cluster.

``objects`` holds the names, labels and fixed figures every object shares; ``rbac`` the permissions
the control plane and the in-cluster controller need.
"""
