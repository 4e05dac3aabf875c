"""The shared kernel of the MASH bus: settings, topics, schemas, codec, storage, command line.

The kernel imports neither `connectors` (the edge) nor `services` (the hub); both import it.
"""

__version__ = "0.1.0"
