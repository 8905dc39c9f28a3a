"""Authorisation in one place: Casbin decides, and the same policy yields SQL scopes for lists."""
from .actions import Action
from .enforcer import PermissionDenied, can, may_perform, relations_to_file
from .scope import customer_scope
from .scoped import count_in_scope

__all__ = ["Action", "PermissionDenied", "can", "may_perform", "relations_to_file", "customer_scope", "count_in_scope"]
