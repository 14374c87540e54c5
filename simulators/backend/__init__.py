"""Simulated backends (PAXSTORE-style TMS, Adyen Management API, a generic agent platform)."""
