"""Member service (seed 001 ch. 六, seed 002): complaints until the member is satisfied, follow-up
visits and surveys, care records against the tier's allowance, and their analysis."""
