"""ForgeNumerics-S: the frame language every signed ArcticCodex artefact is written in."""
