"""Quotas: quota use per application (from the day rollups) and threshold emails."""
