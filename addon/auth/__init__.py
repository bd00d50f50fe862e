"""Verifying Google-signed requests, resolving the member and workspace, and roles."""
