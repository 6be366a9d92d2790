"""The Temporal client factory, search-attribute keys and the way tasks are started."""
