"""Lab panels of the built-in applications (each application names its own by import path)."""
