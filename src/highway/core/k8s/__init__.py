"""Kubernetes objects as plain dicts (pure): shared names, the base stack, one folder per app, overlays.

``highway manifests render`` dumps them with pyyaml into ``k8s/``; the Kubernetes runtime applies an
app's objects with server-side apply. Nothing here talks to a cluster.
"""
