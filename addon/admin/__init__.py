"""Workspace administration: members and invitations, domain settings, audit views, privacy."""
