"""The Studio web UI (``arcticcodex studio``): chat, vault explorer, review queue, datasets, runs, GPUs."""

from .app import create_app, is_loopback

__all__ = ["create_app", "is_loopback"]
