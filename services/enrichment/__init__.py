"""Enrichment: link each inbound event to one person."""
