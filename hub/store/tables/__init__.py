"""ORM tables, one module per area. Importing this package registers them all on `Base.metadata`."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
