"""The shared core every other package stands on: errors, auth, storage, metrics,
logging, rate limits, settings and time. It imports no other package of the project."""
