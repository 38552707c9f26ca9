"""Schemas for sync packets, pull lists and done bodies (shipped as package data)."""
