"""faithfulness."""
