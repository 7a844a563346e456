"""The sample legacy estate: a synthetic county's children's services spread over six
legacy systems, each in its own format and with the mess real legacy data has.

The layout of every system is documented in `docs/estate.md`; the mapping files in
`systems/` are written against it. `generate` writes an estate; `mutate` makes a
trickle of realistic changes to one in place.
"""

from hub.estate.generator import DEFAULT_AS_OF, SYSTEMS, Manifest, generate
from hub.estate.mutations import Mutation, mutate

__all__ = ["DEFAULT_AS_OF", "SYSTEMS", "Manifest", "Mutation", "generate", "mutate"]
