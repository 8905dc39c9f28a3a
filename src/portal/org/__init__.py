"""The organisation tree: company → region → team, each unit with a code."""
