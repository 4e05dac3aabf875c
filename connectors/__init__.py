"""The edge: the connector SDK and one reference connector per agency.

Connectors import the kernel (`mash`) and never the hub (`services`).
"""
