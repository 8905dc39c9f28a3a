"""Each role's home page: counts computed in SQL within the policy's scope (sales.py, desks.py)."""
