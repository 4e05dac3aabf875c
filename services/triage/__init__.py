"""Triage: correlate a child's events across agencies into one alert."""
