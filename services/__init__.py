"""The hub: the Faust app and its stages (enrichment, triage, the triage store).

Each stage is a pure decision module plus a thin agent around it.
"""
