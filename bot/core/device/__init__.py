"""device: IoT device registration and activation against the ``iotCatalog`` table.

Entry points (what ``bot.listeners.device``, ``bot.cli.device`` and ``handlers/device_registration.py``
call): ``commands`` (``register``/``registration_handler``, ``activate``, ``deactivate``, ``show``,
``list_devices``). Activation codes are ``Secret`` values from the moment they are parsed.
"""
