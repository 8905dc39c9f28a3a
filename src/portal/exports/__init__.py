"""Export control: every export states a purpose; large ones wait for a leader; leaks can be traced."""
