"""Checking texts: the engine that runs a policy direction's checks and decides, the normalised view checks read,
the per-request placeholder vault, and streamed output released in checked windows."""
