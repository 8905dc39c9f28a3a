"""The product catalogue: the distributor's quotation, versioned by effective dates."""
