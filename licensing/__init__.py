"""Catalog rights, license grants, the enforcement engine (`engine`, no Django) and metering."""
