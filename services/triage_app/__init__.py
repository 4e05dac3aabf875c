"""The triage web app: where MASH staff work the queue, see a child's timeline as their role may,
claim alerts and record decisions."""
