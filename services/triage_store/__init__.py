"""The triage store: alerts and event outcomes in SQL, fed from Kafka idempotently."""
