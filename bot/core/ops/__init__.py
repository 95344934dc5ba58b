"""``/ops`` and ``opsbot doctor``: checks of the wiring every capability depends on."""
