"""Offline stand-ins for the outside world: a fake OpenAI-compatible provider and a docs site."""
