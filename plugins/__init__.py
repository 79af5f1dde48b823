"""aelab's built-in model plugins, installed under the import name ``aelab_plugins``.

Each module registers its models through the ``aelab`` entry-point group, exactly as a
third-party package would; nothing in the core names a model.
"""
