"""Thin HTTP handlers: parse, authorise (through portal.policy), call the domain, render."""
