"""A hostile documentation site: each case a careless or malicious site could serve (issue 25)."""
