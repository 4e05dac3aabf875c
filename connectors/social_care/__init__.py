"""The social_care reference connector."""
