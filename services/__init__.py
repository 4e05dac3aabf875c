"""The hub: its stages (enrichment, sharing, triage and the triage store) and the triage web app.

Each stage is a pure decision module plus a thin agent around it.
"""
