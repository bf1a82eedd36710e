"""Benchmarks of vpcore: accuracy, VoxCeleb runner, speed, scale, service load (see docs/benchmarks.md)."""
