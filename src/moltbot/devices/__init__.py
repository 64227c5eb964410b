"""Devices: operator and node pairing, connected nodes and what they run, exec approvals.

Modules, imported by name (nothing here is re-exported):

- :mod:`.identity` — Ed25519 device proofs (verify a connect; sign as a client);
- :mod:`.pairing` — paired devices and their per-role tokens (``<state>/devices/``);
- :mod:`.nodes` — the ``node.pair.*`` store (``<state>/nodes/``);
- :mod:`.registry` — the ``nodes`` subsystem: connected nodes, ``node.invoke``;
- :mod:`.approvals` — the exec approvals file (``<state>/exec-approvals.json``);
- :mod:`.approver` — the ``exec.approvals`` subsystem: operators decide;
- :mod:`.node_host` — ``moltbot node run``: a headless node running commands;
- :mod:`.voicewake` — wake words sent to nodes.

This package never imports the gateway: the gateway hands it what it needs
(a send callable per node connection, the broadcast of its subsystem context).
"""

__all__: list[str] = []
