"""Presets (envs/ and strategies/ of the source tree) shipped with the package."""
