"""The health reference connector."""
