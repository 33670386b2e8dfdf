"""The only code that talks to the API server: a small async REST client, builders, patches."""
