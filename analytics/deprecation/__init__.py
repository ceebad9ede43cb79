"""Deprecation: who still calls deprecated API versions, and emails telling them so."""
