"""Every assignment's checks, registered in gradebox.checks.REGISTRY when this package is imported.

One module per assignment, named after it without its number (01_setup -> setup.py), declaring ASSIGNMENT.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
