"""The service: the engine (the per-config logic over a store and schedulers) and the factory building one."""
