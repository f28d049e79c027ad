"""Shared contracts: enums, task queues, workflow ids, error types, dataclasses.

Everything here is pure data: safe to import from workflows, activities, workers and clients.
"""
