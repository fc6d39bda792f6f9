"""Credentials: admin JWTs, API keys, scopes, and the authenticator in front of the caches."""
