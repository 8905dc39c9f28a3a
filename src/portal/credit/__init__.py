"""Sales on credit: grants, limits, applications, orders, the receivables ledger, liability."""
