"""SnapStart runtime hooks for Python, with the API of Lambda's snapshot_restore_py.

    from snapshot_restore_py import register_before_snapshot, register_after_restore

    @register_before_snapshot
    def close_connections(): ...

    register_after_restore(reconnect, "db", retries=3)

Both forms register func(*args, **kwargs) and return func unchanged. Kiln's python3.11
runtime runs the hooks only when the function is initialized for a snapshot
(AWS_LAMBDA_INITIALIZATION_TYPE=snap-start): the before-snapshot hooks once, after the
handler's module is imported, in reverse order of registration; the after-restore hooks
once in each sandbox restored from the snapshot, in order of registration, before its
first invoke. Hooks registered by modules the handler's module never imports never run.
"""

_before_snapshot = []
_after_restore = []


def register_before_snapshot(func, *args, **kwargs):
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot():
    """The before-snapshot hooks as (func, args, kwargs), in order of registration."""
    return list(_before_snapshot)


def get_after_restore():
    """The after-restore hooks as (func, args, kwargs), in order of registration."""
    return list(_after_restore)
