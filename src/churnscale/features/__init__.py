"""Feature encoding shared by training, scoring and serving."""
