"""The networks of aelab's built-in models (torch), one module per plugin. The plugin modules
(``aelab_plugins.vae``, ...) register torch-free specs naming these classes by import path, so
listing the models imports none of this; the first build of a model imports its module."""
