"""The police reference connector."""
