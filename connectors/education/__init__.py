"""The education reference connector."""
