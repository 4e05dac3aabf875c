"""The Faust application that hosts the hub's stages."""
